"""``chatctl join``: the interactive client (a terminal) and the line client (pipes).

How the prompt and the receive loop share the terminal: prompt_toolkit's
``prompt_async`` owns the input line and ``patch_stdout(raw=True)`` turns every
write to stdout into "erase the prompt, print, redraw the prompt with what was
typed so far". The receive loop therefore just prints Rich output to stdout.
``raw=True`` lets Rich's colour codes through; that is safe only because every
untrusted string was escaped by ``protocol.clean_frame`` before it got here.

Without a terminal on both stdin and stdout there is no prompt at all: each
stdin line is a message, the conversation goes to stdout as plain lines, and
notes about the session go to stderr so a pipe carries only the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.text import Text

from chatctl.client import ChatClient, ClientError
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import MAX_TEXT_BYTES, ProtocolError
from chatctl.ui.errors import print_error
from chatctl.ui.render import notice_line, render_frame, welcome_line

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText

#: What the user types to leave (besides Ctrl-D and Ctrl-C).
QUIT_WORDS = frozenset({"exit", "/quit"})
#: Seconds to wait for the server to close after we said goodbye.
_LEAVE_TIMEOUT = 2.0


def run_join(host: str, port: int, name: str) -> int:
    """Join, chat until the user leaves or the server goes; returns the exit code."""
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    try:
        return asyncio.run(_join(host, port, name, interactive))
    except KeyboardInterrupt:
        return ExitCode.OK


async def _join(host: str, port: int, name: str, interactive: bool) -> int:
    try:
        client = await ChatClient.join(host, port, name)
    except ClientError as exc:
        print_error(str(exc))
        return exit_code_for(exc)
    try:
        if interactive:
            return await _interactive(client)
        return await _piped(client)
    finally:
        await client.close()


async def _receive(client: ChatClient, show: _Show, warn: _Show) -> int:
    """Show frames until the connection ends; returns the exit code that ending means."""
    try:
        async for frame in client:
            line = render_frame(frame, client.name)
            if line is not None:
                show(line)
    except ClientError as exc:
        warn(notice_line_now(f"{exc}", "bold red"))
        return exit_code_for(exc)
    if client.shutdown is not None:
        return ExitCode.SERVER_SHUTDOWN
    return ExitCode.OK


def notice_line_now(text: str, style: str) -> Text:
    return notice_line(time.time(), text, style)


class _Show:
    """Where lines go: Rich styles for a terminal, ``Text.plain`` for a pipe."""

    def __init__(self, console: Console | None, out: TextIO | None = None) -> None:
        self.console = console
        self.out = out

    def __call__(self, line: Text) -> None:
        if self.console is not None:
            self.console.print(line)
        elif self.out is not None:
            self.out.write(line.plain + "\n")
            self.out.flush()


async def _finish(client: ChatClient, receiver: asyncio.Task[int]) -> int:
    """Leave, then let the receive loop see the server's close (bounded wait)."""
    await client.leave()
    try:
        await asyncio.wait_for(asyncio.shield(receiver), _LEAVE_TIMEOUT)
    except TimeoutError:
        receiver.cancel()
    return ExitCode.OK


# --------------------------------------------------------------------------- terminal


async def _interactive(client: ChatClient) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.patch_stdout import patch_stdout

    # file=None: Rich looks up sys.stdout at each print, i.e. the patched proxy.
    console = Console(force_terminal=True, highlight=False, soft_wrap=True)
    show = _Show(console)
    session: PromptSession[str] = PromptSession(erase_when_done=True)
    prompt = FormattedText([("bold", f"{client.name}"), ("", "> ")])
    # Raw mode for the whole session, not only while a prompt runs: keys typed between
    # one Enter and the next prompt would otherwise be echoed by the terminal itself.
    with session.input.raw_mode(), patch_stdout(raw=True):
        show(welcome_line(client.welcome))
        receiver = asyncio.create_task(_receive(client, show, show))
        while True:
            asking = asyncio.ensure_future(_ask(session, prompt))
            await asyncio.wait({asking, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done():
                asking.cancel()
                await asyncio.gather(asking, return_exceptions=True)
                return receiver.result()
            line = asking.result()
            if line is None or line.strip() in QUIT_WORDS:
                return await _finish(client, receiver)
            await _send(client, line, show)


async def _ask(session: PromptSession[str], prompt: FormattedText) -> str | None:
    """One line from the user; None for Ctrl-D or Ctrl-C.

    Caught here because a KeyboardInterrupt escaping a task stops the whole loop.
    """
    try:
        return await session.prompt_async(prompt)
    except (EOFError, KeyboardInterrupt):
        return None


async def _send(client: ChatClient, text: str, show: _Show) -> None:
    if not text.strip():
        return
    try:
        await client.say(text)
    except ProtocolError as exc:
        show(notice_line_now(f"not sent: {exc.message}", "bold red"))


# --------------------------------------------------------------------------- pipes


async def _piped(client: ChatClient) -> int:
    show, warn = _Show(None, sys.stdout), _Show(None, sys.stderr)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        welcome_line(client.welcome, hint=False)
    )
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    _start_stdin_reader(asyncio.get_running_loop(), lines)
    receiver = asyncio.create_task(_receive(client, show, warn))
    while True:
        getting = asyncio.ensure_future(lines.get())
        await asyncio.wait({getting, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done():
            getting.cancel()
            return receiver.result()
        line = getting.result()
        if line is None or line.strip() in QUIT_WORDS:
            return await _finish(client, receiver)
        await _send(client, line, warn)


#: Longer stdin lines are refused anyway, so the reader never holds more than this.
_MAX_LINE = MAX_TEXT_BYTES * 4


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


def _start_stdin_reader(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread and hand lines to the loop.

    A daemon thread because ``connect_read_pipe`` fails on regular files and
    hangs on /dev/null, and a worker thread blocked in read() would keep the
    process alive at exit while stdin stays open. It reads the file descriptor
    with ``os.read``, not ``sys.stdin``: a daemon thread blocked inside a
    buffered reader holds its lock, and the interpreter aborts at exit on it.
    """

    def put(item: str | None) -> None:
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
