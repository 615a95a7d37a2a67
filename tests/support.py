"""Shared test helpers: real servers on ephemeral loopback ports, real processes, deadlines.

No fixed sleeps: every wait polls a condition until a deadline, scaled by
CHATCTL_TEST_TIMEOUT_FACTOR on slow machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FACTOR = float(os.environ.get("CHATCTL_TEST_TIMEOUT_FACTOR", "1"))
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
    base.update({"PYTHONUNBUFFERED": "1", "TERM": base.get("TERM", "xterm-256color")})
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
    """A real ``chatctl serve`` on an ephemeral loopback port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*chatctl_command(), "serve", "--host", "127.0.0.1", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
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


class PipedClient:
    """A piped ``chatctl join NAME`` whose stdin stays open until the test closes it."""

    def __init__(self, name: str, port: int, *args: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [*chatctl_command(), "join", name, "--host", "127.0.0.1", "--port", str(port), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)

    def joined(self) -> PipedClient:
        """Wait until the server welcomed us (the welcome note goes to stderr)."""
        self.err.wait_for(rf"joined chatctl .* as {re.escape(self.name)};")
        self.out.wait_for(rf"\* {re.escape(self.name)} joined$")
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
