"""The interactive ``chatctl join`` in a real terminal, driven through tmux as a person would.

Every test gets a private tmux server (``tmux -L <unique socket> -f /dev/null``), so a
user's own tmux is never touched, and kills it afterwards. A shell runs ``chatctl``
and prints ``EXIT=<status>`` when it ends, so the exit code can be read off the screen.

tmux is required, not optional: without it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import (
    FACTOR,
    PipedClient,
    ServeProcess,
    chatctl_command,
    env,
    run_chatctl,
    wait_until,
)

WIDTH, HEIGHT = 120, 30
STAMP = r"\[\d\d:\d\d:\d\d\]"
#: ``[HH:MM:SS] alice: `` is 18 columns: where continuation lines of alice's messages start.
INDENT = " " * len("[00:00:00] alice: ")


def _tmux_binary() -> str:
    found = shutil.which("tmux")
    if found is None:
        pytest.fail("tmux is not installed: these terminal tests need it (CI installs it)")
    return found


class Terminal:
    """One tmux pane on a private tmux server, with a fixed size."""

    def __init__(self) -> None:
        self.binary = _tmux_binary()
        self.socket = f"chatctl-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.target = "chat:0.0"
        # The tmux server inherits this environment: no CHATCTL_*, and not "inside" any tmux.
        self.env = {k: v for k, v in env().items() if k not in ("TMUX", "TMUX_PANE")}
        self.socket_path = ""

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            [self.binary, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10 * FACTOR,
            env=self.env,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def start(self, *argv: str) -> None:
        """Run ``argv`` in a new WIDTHxHEIGHT pane; ``EXIT=<status>`` is printed after it.

        A shell runs the program and waits for it, then prints its status and keeps
        the pane open. (tmux's own remain-on-exit was tried: tmux 3.3a here sometimes
        never reaps the exited program, so ``#{pane_dead_status}`` stays empty.)
        """
        script = (
            'env TERM=xterm-256color PROMPT_TOOLKIT_NO_CPR=1 "$@"; echo "EXIT=$?"; exec sleep 600'
        )
        self.tmux(
            # Let programs in the pane set tmux's clipboard (OSC 52): a leak would show.
            "set-option", "-g", "set-clipboard", "on", ";",
            "new-session", "-d", "-s", "chat", "-x", str(WIDTH), "-y", str(HEIGHT),
            "sh", "-c", script, "sh", *argv,
        )  # fmt: skip
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()

    def kill(self) -> None:
        """Stop this private tmux server (and the pane's programs) and remove its socket."""
        if not self.socket_path:
            return
        subprocess.run(
            [self.binary, "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=10 * FACTOR,
            env=self.env,
            check=False,
        )
        Path(self.socket_path).unlink(missing_ok=True)  # tmux 3.3 leaves it behind

    # ------------------------------------------------------------------ reading

    def screen(self) -> str:
        """What a person sees in the pane right now (trailing blanks trimmed by tmux)."""
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def lines(self) -> list[str]:
        """The screen's lines up to the last one that is not blank."""
        rows = [row.rstrip() for row in self.screen().split("\n")]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def wait_screen(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Poll the screen until ``pattern`` (multiline regex) is on it; show it all if not."""
        regex = re.compile(pattern, re.MULTILINE)
        last = [""]
        found: list[re.Match[str]] = []

        def seen() -> bool:
            last[0] = self.screen()
            if m := regex.search(last[0]):
                found.append(m)
                return True
            return False

        try:
            wait_until(seen, timeout, f"{pattern!r} on the screen")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nexpected: {pattern!r}\nactual last line: {self._last(last[0])!r}\n"
                f"full screen:\n{self._frame(last[0])}"
            ) from None
        return found[0]

    def wait_for(
        self, predicate: Callable[[list[str]], object], what: str, timeout: float = 10.0
    ) -> None:
        """Poll ``predicate(lines)`` until true; show the screen if it never is."""
        try:
            wait_until(lambda: predicate(self.lines()), timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nfull screen:\n{self._frame(self.screen())}") from None

    def wait_last(self, line: str, timeout: float = 10.0) -> None:
        """Wait until ``line`` is the last line on the screen (where the prompt is)."""
        self.wait_for(lambda rows: bool(rows) and rows[-1] == line, f"last line {line!r}", timeout)

    @staticmethod
    def _last(text: str) -> str:
        rows = [row for row in text.split("\n") if row.strip()]
        return rows[-1] if rows else ""

    @staticmethod
    def _frame(text: str) -> str:
        return "\n".join(f"|{row}" for row in text.rstrip("\n").split("\n"))

    def show(self) -> str:
        return self._frame(self.screen())

    def title(self) -> str:
        return self.tmux("display-message", "-p", "-t", self.target, "#{pane_title}").strip()

    def buffers(self) -> str:
        return self.tmux("list-buffers")

    def exit_status(self, timeout: float = 10.0) -> int:
        """Wait for the program in the pane to end; its exit status (``EXIT=n`` from sh)."""
        return int(self.wait_screen(r"^EXIT=(\d+)$", timeout).group(1))

    # ------------------------------------------------------------------ typing

    def type(self, text: str) -> None:
        """Type ``text`` literally (no key names, no Enter)."""
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def keys(self, *keys: str) -> None:
        """Press keys by tmux name: ``Enter``, ``C-d``, ``C-c``."""
        self.tmux("send-keys", "-t", self.target, *keys)

    def paste(self, text_file: Path) -> None:
        """Paste a file as a person's paste: bracketed when the program asked for it."""
        self.tmux("load-buffer", "-b", "clip", str(text_file))
        self.tmux("paste-buffer", "-p", "-d", "-b", "clip", "-t", self.target)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        term.kill()


def join_in(term: Terminal, serve: ServeProcess, name: str = "alice") -> Terminal:
    term.start(*chatctl_command(), "join", name, "--host", "127.0.0.1", "--port", str(serve.port))
    term.wait_screen(rf"^{STAMP} \* joined .* as {name};")
    term.wait_last(f"{name}>")
    return term


@pytest.fixture
def alice(serve: ServeProcess, terminal: Terminal) -> Terminal:
    """``chatctl join alice`` running in the tmux pane, at its prompt."""
    return join_in(terminal, serve)


@pytest.fixture
def bob(serve: ServeProcess, alice: Terminal) -> Iterator[PipedClient]:
    """A piped ``chatctl join bob`` that stays in the room; alice has seen it arrive."""
    client = PipedClient("bob", serve.port)
    try:
        alice.wait_screen(rf"^{STAMP} \* bob joined$")
        yield client
    finally:
        client.close_stdin()
        try:
            client.wait(10)
        finally:
            client.kill()


def relayed(serve: ServeProcess) -> int:
    result = run_chatctl("status", "--port", str(serve.port), "--json")
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["server"]["messages_relayed"])


def say_piped(serve: ServeProcess, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """A one-shot piped client: joins, sends each line of ``text``, leaves."""
    result = run_chatctl("join", name, "--port", str(serve.port), input=text)
    assert result.returncode == 0, f"{name} exited {result.returncode}: {result.stderr}"
    return result


# --------------------------------------------------------------------------- tests


def test_welcome_timestamp_and_prompt(alice: Terminal) -> None:
    rows = alice.lines()
    assert re.fullmatch(
        rf"{STAMP} \* joined chatctl \S+ as alice; online: nobody else yet\. "
        r"Type to chat; exit, /quit or Ctrl-D to leave\.",
        rows[0],
    ), alice.show()
    assert rows[-1] == "alice>", alice.show()
    # Exactly one prompt on the screen: nothing printed it twice or left a stale one.
    assert sum(row.startswith("alice>") for row in rows) == 1, alice.show()


def test_half_typed_line_survives_incoming_message(serve: ServeProcess, alice: Terminal) -> None:
    alice.type("half typ")
    alice.wait_last("alice> half typ")

    say_piped(serve, "bob", "hello from bob\n")
    alice.wait_screen(rf"^{STAMP} \* bob left$")
    message = rf"{STAMP} bob: hello from bob"

    def settled(rows: list[str]) -> bool:
        return rows[-1:] == ["alice> half typ"] and any(re.fullmatch(message, r) for r in rows)

    alice.wait_for(settled, "bob's message above an intact 'alice> half typ'")
    rows = alice.lines()
    at = next(i for i, row in enumerate(rows) if re.fullmatch(message, row))
    assert at < len(rows) - 1, alice.show()
    # The typed text was not spliced into any line, nor the message into the prompt.
    assert sum("half typ" in row for row in rows) == 1, alice.show()

    alice.type("ed")
    alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} alice: half typed$")
    alice.wait_last("alice>")
    screen = alice.screen()
    assert screen.count("half typed") == 1, alice.show()
    assert "alice> half typ" not in screen, alice.show()  # erase_when_done: no stale echo
    assert relayed(serve) == 2


def test_empty_and_blank_input_are_ignored(serve: ServeProcess, alice: Terminal) -> None:
    # One burst (a single send-keys): the keys after each Enter are already read when
    # the prompt ends, so this test does not depend on typing speed (see type-ahead test).
    # The real message at the end is relayed in order: once it is on the screen,
    # anything the blank lines had sent would be there too.
    alice.keys("Enter", "   ", "Enter", "\t \t", "Enter", "marker", "Enter")
    alice.wait_screen(rf"^{STAMP} alice: marker$")
    alice.wait_last("alice>")

    rows = alice.lines()
    said = [row for row in rows if re.match(rf"{STAMP} alice:", row)]
    assert said == [said[-1]], alice.show()
    assert not any("not sent" in row for row in rows), alice.show()
    assert sum(row.startswith("alice>") for row in rows) == 1, alice.show()
    assert relayed(serve) == 1


def test_typing_ahead_leaves_no_junk_on_the_screen(serve: ServeProcess, alice: Terminal) -> None:
    """A fast typist starts the next line before the next prompt is up.

    Each word and its Enter are separate writes to the terminal, as keystrokes are.
    Whatever arrives between two prompts must still be taken as input, not echoed
    by the terminal driver onto the screen (no stray text, no blank lines).
    """
    words = [f"quick{i}" for i in range(12)]
    for word in words:
        alice.type(word)
        alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} alice: {words[-1]}$")
    alice.wait_last("alice>")

    rows = alice.lines()
    assert re.fullmatch(rf"{STAMP} \* joined .*", rows[0]), alice.show()
    assert re.fullmatch(rf"{STAMP} \* alice joined", rows[1]), alice.show()
    body = rows[2:-1]
    assert len(body) == len(words), alice.show()
    for row, word in zip(body, words, strict=True):
        assert re.fullmatch(rf"{STAMP} alice: {word}", row), alice.show()
    assert rows[-1] == "alice>", alice.show()
    assert relayed(serve) == len(words)


@pytest.mark.parametrize(
    ("typed", "keys"),
    [
        pytest.param("exit", ["Enter"], id="exit"),
        pytest.param("/quit", ["Enter"], id="slash-quit"),
        pytest.param("  exit  ", ["Enter"], id="exit-with-spaces"),
        pytest.param("", ["C-d"], id="ctrl-d"),
        pytest.param("", ["C-c"], id="ctrl-c"),
        pytest.param("half typed", ["C-c"], id="ctrl-c-half-typed"),
    ],
)
def test_leaving_exits_zero(
    serve: ServeProcess, alice: Terminal, typed: str, keys: list[str]
) -> None:
    if typed:
        alice.type(typed)
        alice.wait_last(f"alice> {typed}".rstrip())
    alice.keys(*keys)
    assert alice.exit_status() == 0, alice.show()
    serve.log.wait_for(r"- alice left \(quit\)")
    assert relayed(serve) == 0  # the quit word / half-typed line was not sent


def test_bracketed_paste_is_one_message(
    serve: ServeProcess, alice: Terminal, bob: PipedClient, tmp_path: Path
) -> None:
    pasted = tmp_path / "paste.txt"
    pasted.write_text("first line\nsecond line\nthird line")  # no trailing newline
    alice.paste(pasted)
    alice.wait_screen(r"^third line$")  # still in alice's input, not sent yet
    assert relayed(serve) == 0, alice.show()
    alice.keys("Enter")

    bob.out.wait_for(r"third line")
    lines = bob.out.snapshot()
    start = next(i for i, line in enumerate(lines) if "first line" in line)
    assert re.fullmatch(rf"{STAMP} alice: first line", lines[start]), lines
    assert lines[start + 1 : start + 3] == [f"{INDENT}second line", f"{INDENT}third line"], lines
    assert sum(bool(re.match(rf"{STAMP} alice:", line)) for line in lines) == 1, lines
    assert relayed(serve) == 1

    # alice sees her own message the same way: one stamped line, two indented ones.
    alice.wait_screen(rf"^{STAMP} alice: first line\n{INDENT}second line\n{INDENT}third line$")
    alice.wait_last("alice>")


HOSTILE = [
    "clear\x1b[2J\x1b[Hscreen",
    "title\x1b]0;pwned\x07",
    "clip\x1b]52;c;aGVsbG8=\x07",
    "report\x1b[6n",
    "[bold red]x[/]",
    "[/]",
    "[link=http://x]y[/link]",
    "the end",
]
#: What alice must see for each, literally: escapes spelled out, markup kept as typed.
SHOWN = [
    r"clear\x1b[2J\x1b[Hscreen",
    r"title\x1b]0;pwned\x07",
    r"clip\x1b]52;c;aGVsbG8=\x07",
    r"report\x1b[6n",
    "[bold red]x[/]",
    "[/]",
    "[link=http://x]y[/link]",
    "the end",
]


def test_hostile_text_stays_inert_on_a_real_terminal(serve: ServeProcess, alice: Terminal) -> None:
    title = alice.title()
    assert title != "pwned"
    alice.type("before the storm")
    alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} alice: before the storm$")

    say_piped(serve, "evil", "\n".join(HOSTILE) + "\n")
    alice.wait_screen(rf"^{STAMP} \* evil left$")
    alice.wait_last("alice>")

    rows = alice.lines()
    shown = [row.split("evil: ", 1)[1] for row in rows if re.match(rf"{STAMP} evil: ", row)]
    assert shown == SHOWN, alice.show()
    # Nothing was cleared: the welcome and alice's earlier line are still on the screen.
    assert re.match(rf"{STAMP} \* joined ", rows[0]), alice.show()
    assert any(re.fullmatch(rf"{STAMP} alice: before the storm", r) for r in rows), alice.show()
    assert alice.title() == title  # no window-title change
    assert alice.buffers() == ""  # no OSC 52 clipboard write reached tmux
    assert relayed(serve) == 1 + len(HOSTILE)


def test_server_shutdown_notice_and_exit_code(serve: ServeProcess, alice: Terminal) -> None:
    serve.stop(signal.SIGTERM)
    alice.wait_screen(rf"^{STAMP} \* the server is shutting down$")
    assert alice.exit_status() == 7, alice.show()
