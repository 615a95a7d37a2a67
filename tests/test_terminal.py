"""The interactive ``chatctl join`` in a real terminal, driven through tmux as a person would.

Every test gets a private tmux server (``tmux -L <unique socket> -f /dev/null``), so a
user's own tmux is never touched, and kills it afterwards. A shell runs ``chatctl``
and prints ``EXIT=<status>`` when it ends, so the exit code can be read off the screen.

tmux is required, not optional: without it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    join_in,
    run_chatctl,
    tmux_terminal,
)

#: ``[HH:MM:SS] alice: `` is 18 columns: where continuation lines of alice's messages start.
INDENT = " " * len("[00:00:00] alice: ")

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with tmux_terminal() as term:
        yield term


@pytest.fixture
def alice(serve: ServeProcess, terminal: Terminal) -> Terminal:
    """``chatctl join alice`` running in the tmux pane, at its prompt."""
    return join_in(terminal, serve.port)


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
        rf"{STAMP} \* joined chatctl \S+ as alice in #lobby; online: nobody else yet\. "
        r"/help: commands, /quit: leave\.",
        rows[0],
    ), alice.show()
    assert rows[-1] == "[#lobby] alice>", alice.show()
    # Exactly one prompt on the screen: nothing printed it twice or left a stale one.
    assert sum(row.startswith("[#lobby] alice>") for row in rows) == 1, alice.show()


def test_half_typed_line_survives_incoming_message(serve: ServeProcess, alice: Terminal) -> None:
    alice.type("half typ")
    alice.wait_last("[#lobby] alice> half typ")

    say_piped(serve, "bob", "hello from bob\n")
    alice.wait_screen(rf"^{STAMP} \* bob left$")
    message = rf"{STAMP} bob: hello from bob"

    def settled(rows: list[str]) -> bool:
        return rows[-1:] == ["[#lobby] alice> half typ"] and any(
            re.fullmatch(message, r) for r in rows
        )

    alice.wait_for(settled, "bob's message above an intact 'alice> half typ'")
    rows = alice.lines()
    at = next(i for i, row in enumerate(rows) if re.fullmatch(message, row))
    assert at < len(rows) - 1, alice.show()
    # The typed text was not spliced into any line, nor the message into the prompt.
    assert sum("half typ" in row for row in rows) == 1, alice.show()

    alice.type("ed")
    alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} alice: half typed$")
    alice.wait_last("[#lobby] alice>")
    screen = alice.screen()
    assert screen.count("half typed") == 1, alice.show()
    assert "[#lobby] alice> half typ" not in screen, alice.show()  # erase_when_done: no stale echo
    assert relayed(serve) == 2


def test_empty_and_blank_input_are_ignored(serve: ServeProcess, alice: Terminal) -> None:
    # One burst (a single send-keys): the keys after each Enter are already read when
    # the prompt ends, so this test does not depend on typing speed (see type-ahead test).
    # The real message at the end is relayed in order: once it is on the screen,
    # anything the blank lines had sent would be there too.
    alice.keys("Enter", "   ", "Enter", "\t \t", "Enter", "marker", "Enter")
    alice.wait_screen(rf"^{STAMP} alice: marker$")
    alice.wait_last("[#lobby] alice>")

    rows = alice.lines()
    said = [row for row in rows if re.match(rf"{STAMP} alice:", row)]
    assert said == [said[-1]], alice.show()
    assert not any("not sent" in row for row in rows), alice.show()
    assert sum(row.startswith("[#lobby] alice>") for row in rows) == 1, alice.show()
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
    alice.wait_last("[#lobby] alice>")

    rows = alice.lines()
    assert re.fullmatch(rf"{STAMP} \* joined .*", rows[0]), alice.show()
    body = rows[1:-1]  # (no "alice joined": the welcome said so already)
    assert len(body) == len(words), alice.show()
    for row, word in zip(body, words, strict=True):
        assert re.fullmatch(rf"{STAMP} alice: {word}", row), alice.show()
    assert rows[-1] == "[#lobby] alice>", alice.show()
    assert relayed(serve) == len(words)


@pytest.mark.parametrize(
    ("typed", "keys"),
    [
        pytest.param("exit", ["Enter"], id="exit"),
        pytest.param("/quit", ["Enter"], id="slash-quit"),
        pytest.param("  exit  ", ["Enter"], id="exit-with-spaces"),
        pytest.param("", ["C-d"], id="ctrl-d"),
        pytest.param("", ["C-c"], id="ctrl-c"),
        pytest.param("half typed", ["C-c", "C-c"], id="ctrl-c-twice-half-typed"),
    ],
)
def test_leaving_exits_zero(
    serve: ServeProcess, alice: Terminal, typed: str, keys: list[str]
) -> None:
    if typed:
        alice.type(typed)
        alice.wait_last(f"[#lobby] alice> {typed}".rstrip())
    alice.keys(*keys)
    assert alice.exit_status() == 0, alice.show()
    serve.log.wait_for(r"- alice left \(quit\)")
    assert relayed(serve) == 0  # the quit word / half-typed line was not sent


def test_ctrl_c_on_a_half_typed_line_clears_it_and_stays(
    serve: ServeProcess, alice: Terminal
) -> None:
    alice.type("oops, not this")
    alice.wait_last("[#lobby] alice> oops, not this")
    alice.keys("C-c")
    alice.wait_last("[#lobby] alice>")  # the line is gone, the client is still there
    alice.type("this")
    alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} alice: this$")
    assert "oops" not in alice.screen(), alice.show()
    assert "EXIT=" not in alice.screen(), alice.show()
    assert relayed(serve) == 1


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
    alice.wait_last("[#lobby] alice>")


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
    alice.wait_last("[#lobby] alice>")

    rows = alice.lines()
    shown = [row.split("evil: ", 1)[1] for row in rows if re.match(rf"{STAMP} evil: ", row)]
    assert shown == SHOWN, alice.show()
    # Nothing was cleared: the welcome and alice's earlier line are still on the screen.
    assert re.match(rf"{STAMP} \* joined ", rows[0]), alice.show()
    assert any(re.fullmatch(rf"{STAMP} alice: before the storm", r) for r in rows), alice.show()
    assert alice.title() == title  # no window-title change
    assert alice.buffers() == ""  # no OSC 52 clipboard write reached tmux
    assert relayed(serve) == 1 + len(HOSTILE)


def test_server_shutdown_notice_then_reconnecting(serve: ServeProcess, alice: Terminal) -> None:
    """An interactive client outlives its server (a piped one exits 7: see test_cli)."""
    serve.stop(signal.SIGTERM)
    alice.wait_screen(
        rf"^{STAMP} \* the server is shutting down\n"
        rf"{STAMP} \* connection to 127\.0\.0\.1:{serve.port} closed by the server; "
        r"reconnecting in 1 s…$"
    )
    alice.wait_last("[offline] alice>")
    alice.keys("C-d")
    assert alice.exit_status() == 0, alice.show()


def test_a_long_line_wraps_at_words_with_its_rows_indented_past_the_name(
    alice: Terminal, bob: PipedClient
) -> None:
    # 40 words of 5 letters: the pane's column 120 falls inside a word (w017x).
    text = " ".join(f"w{i:03d}x" for i in range(40))
    bob.send(text)
    alice.wait_screen(r"w039x$")
    rows = alice.lines()
    first = next(i for i, row in enumerate(rows) if re.match(rf"{STAMP} bob: w000x", row))
    last = next(i for i, row in enumerate(rows) if row.endswith("w039x"))
    wrapped = rows[first : last + 1]
    indent = " " * len("[00:00:00] bob: ")
    assert len(wrapped) == 3, alice.show()
    for row in wrapped[1:]:
        assert re.match(rf"{indent}\S", row), alice.show()
    # Broken only between words: each row holds whole words, and together all of them.
    words = [row[len(indent) :].split() for row in wrapped]
    assert all(re.fullmatch(r"w\d{3}x", w) for ws in words for w in ws), alice.show()
    assert " ".join(w for ws in words for w in ws) == text, alice.show()
    assert all(len(row) <= 120 for row in wrapped)
    # A pipe still gets one line per message line, unwrapped.
    bob.out.wait_for(rf"^{STAMP} bob: {text}$")
