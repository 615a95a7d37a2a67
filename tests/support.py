"""Shared test helpers: real servers on ephemeral loopback ports, real processes, deadlines.

No fixed sleeps: every wait polls a condition until a deadline, scaled by
CHATCTL_TEST_TIMEOUT_FACTOR on slow machines.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

FACTOR = float(os.environ.get("CHATCTL_TEST_TIMEOUT_FACTOR", "1"))
#: The config folder children get unless a test passes its own CHATCTL_CONFIG_DIR.
SCRATCH_CONFIG_DIR = tempfile.mkdtemp(prefix="chatctl-test-config-")
atexit.register(shutil.rmtree, SCRATCH_CONFIG_DIR, ignore_errors=True)
#: Each child gets a data folder (history files) of its own under this one, so a server
#: on a port an earlier test used never finds that test's history.
SCRATCH_DATA_ROOT = tempfile.mkdtemp(prefix="chatctl-test-data-")
atexit.register(shutil.rmtree, SCRATCH_DATA_ROOT, ignore_errors=True)
ROOT = Path(__file__).resolve().parent.parent


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds * FACTOR


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` at the deadline."""
    end = deadline(timeout)
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout * FACTOR:g} s waiting for {what}")
        time.sleep(0.02)


async def async_wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
) -> None:
    end = deadline(timeout)
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout * FACTOR:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def within(awaitable: Awaitable[object], timeout: float = 5.0) -> object:
    return await asyncio.wait_for(awaitable, timeout * FACTOR)


def chatctl_command() -> list[str]:
    """The installed ``chatctl`` console script (a real process, as a user runs it)."""
    script = Path(sys.executable).parent / "chatctl"
    if script.exists():
        return [str(script)]
    found = shutil.which("chatctl")
    return [found] if found else [sys.executable, "-m", "chatctl"]


def env(**extra: str) -> dict[str, str]:
    """A clean environment for a child: no colour surprises, no inherited CHATCTL_*."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    # A terminal's size comes from the terminal (tmux's pane), never from the runner's
    # environment: pytest-xdist workers inherit a COLUMNS that would shrink every pane.
    base.pop("COLUMNS", None)
    base.pop("LINES", None)
    base.pop("PYTHONDEVMODE", None)  # (the test runner's own; a test that wants it says so)
    base.update({"PYTHONUNBUFFERED": "1", "TERM": base.get("TERM", "xterm-256color")})
    # Never the user's own config folder (TLS certificate, known servers): a scratch one.
    base["CHATCTL_CONFIG_DIR"] = SCRATCH_CONFIG_DIR
    # ...and never the user's data folder either.
    base["CHATCTL_DATA_DIR"] = tempfile.mkdtemp(dir=SCRATCH_DATA_ROOT)
    base.update(extra)
    return base


def run_chatctl(
    *args: str, input: str | None = None, timeout: float = 20.0, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*chatctl_command(), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout * FACTOR,
        env=env(**env_extra),
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )


class LineReader:
    """Collects a child's output lines in a thread, so tests can wait on them."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def text(self) -> str:
        return "\n".join(self.snapshot())

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            for line in self.snapshot():
                if m := regex.search(line):
                    found.append(m)
                    return True
            return False

        wait_until(seen, timeout, f"{pattern!r} in output:\n{self.text()}")
        return found[0]

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout * FACTOR)


class ServeProcess:
    """A real ``chatctl serve`` on a loopback port: an ephemeral one unless ``port`` is given."""

    def __init__(
        self,
        *args: str,
        port: int = 0,
        command: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``command`` replaces the ``chatctl`` executable; ``extra_env`` adds to ``env()``."""
        self.proc = subprocess.Popen(
            [
                *(command or chatctl_command()),
                *("serve", "--host", "127.0.0.1", "--port", str(port), *args),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(**(extra_env or {})),
        )
        assert self.proc.stdout is not None
        self.log = LineReader(self.proc.stdout)
        match = self.log.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
        self.port = int(match.group(1))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * FACTOR)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.join()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class PipedClient:
    """A piped ``chatctl join NAME`` whose stdin stays open until the test closes it."""

    def __init__(
        self, name: str, port: int, *args: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [*chatctl_command(), "join", name, "--host", "127.0.0.1", "--port", str(port), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(**(extra_env or {})),
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)

    def joined(self) -> PipedClient:
        """Wait until the server welcomed us into our rooms (the welcome note goes to stderr,
        printed once the server has put us in every room)."""
        self.err.wait_for(rf"joined chatctl .* as {re.escape(self.name)} in ")
        return self

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 5.0) -> int:
        code = self.proc.wait(timeout * FACTOR)
        self.out.join()
        self.err.join()
        return code

    def everything(self) -> str:
        return self.out.text() + "\n" + self.err.text()

    def wait_for_anywhere(self, pattern: re.Pattern[str], timeout: float = 10.0) -> None:
        """Wait for a line on stdout or stderr (notices may go to either)."""
        wait_until(
            lambda: pattern.search(self.everything()),
            timeout,
            f"{pattern.pattern!r} in output:\n{self.everything()}",
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextmanager
def serve_process(*args: str) -> Iterator[ServeProcess]:
    server = ServeProcess(*args)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- tmux
#
# The interactive client in a real terminal: every Terminal is a private tmux server
# (``tmux -L <unique socket> -f /dev/null``), so a user's own tmux is never touched.
# tmux is required, not optional: without it these tests fail, they do not skip.

#: The tmux pane's size, and the ``[HH:MM:SS]`` stamp that starts every chat line.
WIDTH, HEIGHT = 120, 30
STAMP = r"\[\d\d:\d\d:\d\d\]"


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
        self.bell_log = Path(os.devnull)

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

    def watch_bells(self, log: Path) -> None:
        """From now on, each bell the pane rings adds a line to ``log`` (see ``bells``)."""
        self.bell_log = log
        log.write_text("")
        self.tmux("set-option", "-g", "monitor-bell", "on")
        self.tmux("set-hook", "-g", "alert-bell", f"run-shell 'echo bell >> {log}'")

    def bells(self) -> int:
        """How many bells the pane has rung since ``watch_bells``."""
        return len(self.bell_log.read_text().splitlines())

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

    def styled(self) -> str:
        """The screen with its colours and attributes, as SGR escape sequences."""
        return self.tmux("capture-pane", "-p", "-e", "-t", self.target)

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


@contextmanager
def tmux_terminal() -> Iterator[Terminal]:
    """A private tmux server with one pane, killed afterwards."""
    term = Terminal()
    try:
        yield term
    finally:
        term.kill()


def prompt(name: str, room: str = "#lobby") -> str:
    """The interactive client's prompt line: the room typed into, then the name."""
    return f"[{room}] {name}>"


def join_in(term: Terminal, port: int, name: str = "alice", *args: str) -> Terminal:
    """Run an interactive ``chatctl join NAME`` in the pane and wait for its prompt."""
    argv = ["join", name, "--host", "127.0.0.1", "--port", str(port), *args]
    term.start(*chatctl_command(), *argv)
    term.wait_screen(rf"^{STAMP} \* joined .* as {name} in ")
    term.wait_for(lambda rows: bool(rows) and rows[-1].endswith(f"{name}>"), f"{name}'s prompt")
    return term
