"""``chatctl join``: the line client (pipes), and what it shares with the interactive one.

Without a terminal on both stdin and stdout there is no prompt at all: each
stdin line is a message, the conversation goes to stdout as plain lines, and
notes about the session go to stderr so a pipe carries only the conversation.
A piped client does not reconnect: a lost connection ends it (exit 6, or 7 when
the server announced its shutdown), after listing what was not relayed.

With a terminal, ``chatctl.ui.interactive`` runs the prompt instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from rich.console import Console

from chatctl import eventloop
from chatctl.client import ChatClient, ClientError, ConnectionLost, TlsOptions
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import MAX_TEXT_BYTES, ProtocolError
from chatctl.ui.access import AskUser, run_asking, worth_asking
from chatctl.ui.errors import print_error
from chatctl.ui.render import ChatLine, notice_line, render_frame, unsent_line, welcome_line
from chatctl.ui.wrap import hang

#: What the user types to leave (besides Ctrl-D and Ctrl-C).
QUIT_WORDS = frozenset({"exit", "/quit"})
#: At end of piped input, wait for the server as long as frames keep coming (it may
#: pace a fast sender), but no longer than this many seconds without any.
SETTLE_IDLE = 10.0


def run_join(
    host: str,
    port: int,
    name: str,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> int:
    """Join, chat until the user leaves or the server goes; returns the exit code.

    In a terminal, an unknown TLS server or a missing password is asked about
    first (``chatctl.ui.access``), before the chat prompt starts.
    """
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()

    def run(tls: TlsOptions | None, password: str | None) -> int:
        return eventloop.run(_join(host, port, name, interactive, tls, password))

    return run_asking(run, tls, password, f"{host}:{port}")


async def _join(
    host: str,
    port: int,
    name: str,
    interactive: bool,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> int:
    try:
        client = await ChatClient.join(host, port, name, tls=tls, password=password)
    except ClientError as exc:
        if worth_asking(exc, interactive, password):
            raise AskUser(exc) from None
        print_error(str(exc))
        return exit_code_for(exc)
    if interactive:
        from chatctl.ui.interactive import run_interactive

        # It closes the client(s) itself; it rejoins with the same TLS options and password.
        return await run_interactive(client, host, port, tls=tls, password=password)
    try:
        return await _piped(client)
    finally:
        await client.close()


async def receive(client: ChatClient, show: Show) -> ClientError | None:
    """Show frames until the connection ends; the error that ended it, if any."""
    try:
        async for frame in client:
            line = render_frame(frame, client.name)
            if line is not None:
                show(line)
    except ClientError as exc:
        return exc
    return None


def notice_line_now(text: str, style: str) -> ChatLine:
    return notice_line(time.time(), text, style)


class Show:
    """Where lines go: Rich styles for a terminal, wrapped to its width with a hanging
    indent; ``Text.plain`` for a pipe, one line per line of the message."""

    def __init__(self, console: Console | None, out: TextIO | None = None) -> None:
        self.console = console
        self.out = out

    def __call__(self, line: ChatLine) -> None:
        if self.console is not None:
            self.console.print(hang(line, line.indent, self.console))
        elif self.out is not None:
            self.out.write(line.plain + "\n")
            self.out.flush()


async def send(client: ChatClient, text: str, show: Show) -> None:
    """Send a line; blank lines are skipped, and a line too long is refused here."""
    if not text.strip():
        return
    try:
        await client.say(text)
    except ProtocolError as exc:
        show(notice_line_now(f"not sent: {exc.message}", "bold red"))


# --------------------------------------------------------------------------- pipes


async def _piped(client: ChatClient) -> int:
    show, warn = Show(None, sys.stdout), Show(None, sys.stderr)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        welcome_line(client.welcome, hint=False)
    )
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    room = threading.BoundedSemaphore(MAX_READ_AHEAD)
    _start_stdin_reader(asyncio.get_running_loop(), lines, room)
    receiver = asyncio.create_task(receive(client, show))
    while True:
        getting = asyncio.ensure_future(lines.get())
        await asyncio.wait({getting, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done():
            getting.cancel()
            return _ended(client, receiver.result(), warn)
        line = getting.result()
        room.release()
        if line is None or line.strip() in QUIT_WORDS:
            return await _finish(client, receiver, warn)
        await send(client, line, warn)


async def _finish(
    client: ChatClient, receiver: asyncio.Task[ClientError | None], warn: Show
) -> int:
    """End of input: leave once the server has relayed everything we sent.

    ``bye`` goes only when every line sent has come back: a server pacing a fast
    sender may still be reading them. The waits last as long as frames keep
    arriving, and give up after ``SETTLE_IDLE`` seconds without any.
    """
    if await client.wait_confirmed(SETTLE_IDLE):
        await client.leave()
        await client.wait_ended(SETTLE_IDLE)
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        return ExitCode.OK
    if client.ended:
        return _ended(client, await receiver, warn)
    receiver.cancel()
    await asyncio.gather(receiver, return_exceptions=True)
    silent = ConnectionLost(
        f"connection to {client.where} lost: the server stopped answering "
        f"(nothing for {SETTLE_IDLE:g} s)"
    )
    return _ended(client, silent, warn)


def _ended(client: ChatClient, error: ClientError | None, warn: Show) -> int:
    """Report how the connection ended, and each line it never relayed; the exit code."""
    if error is not None:
        warn(notice_line_now(str(error), "bold red"))
    for line in client.unconfirmed.take():
        warn(unsent_line(time.time(), line))
    if error is not None:
        return exit_code_for(error)
    return ExitCode.SERVER_SHUTDOWN if client.shutdown is not None else ExitCode.OK


#: Longer stdin lines are refused anyway, so the reader never holds more than this.
_MAX_LINE = MAX_TEXT_BYTES * 4
#: Lines read from stdin but not yet sent. The sender goes at the server's pace (5/s once
#: the burst is spent), so ``cat big.log | chatctl join`` would otherwise hold the whole
#: file in memory; with this bound the reader waits, and so does the pipe's writer.
MAX_READ_AHEAD = 256


def split_lines(chunks: Iterable[bytes], limit: int = _MAX_LINE) -> Iterator[bytes]:
    """Lines from a stream of chunks, newline dropped; a line over ``limit`` is cut there.

    The cut line is still yielded (it is over the message limit, so sending it
    fails with a clear "not sent"), and the rest of it is skipped.
    """
    buf = b""
    skipping = False
    for chunk in chunks:
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if not skipping:
                yield buf[start:end]
            skipping = False
            start = end + 1
        buf = buf[start:]
        if len(buf) > limit:
            if not skipping:
                yield buf[:limit]
            skipping, buf = True, b""
    if buf and not skipping:
        yield buf


def _read_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, 65536):
        yield chunk


def _start_stdin_reader(
    loop: asyncio.AbstractEventLoop,
    lines: asyncio.Queue[str | None],
    room: threading.BoundedSemaphore,
) -> None:
    """Read stdin in a daemon thread and hand lines to the loop.

    A daemon thread because ``connect_read_pipe`` fails on regular files and
    hangs on /dev/null, and a worker thread blocked in read() would keep the
    process alive at exit while stdin stays open. It reads the file descriptor
    with ``os.read``, not ``sys.stdin``: a daemon thread blocked inside a
    buffered reader holds its lock, and the interpreter aborts at exit on it.
    It takes one of ``room``'s slots per line, so it never reads far ahead.
    """

    def put(item: str | None) -> None:
        room.acquire()  # released as the loop takes each line: at most MAX_READ_AHEAD held
        with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting anyway
            loop.call_soon_threadsafe(lines.put_nowait, item)

    def pump() -> None:
        try:
            if sys.stdin is not None:
                for raw in split_lines(_read_chunks(sys.stdin.fileno())):
                    put(raw.decode("utf-8", errors="replace").rstrip("\r"))
        except (OSError, ValueError):
            pass
        finally:
            put(None)

    threading.Thread(target=pump, name="chatctl-stdin", daemon=True).start()
