"""``chatctl join NAME --read-only``: a projector screen for a classroom.

No input line: the room, its topic, then the conversation with a blank line between
lines, readable from the back of the room. Nothing can be sent (the server refuses
it too: the ``hello`` said ``read_only``), and keys pressed are not echoed onto the
screen: the terminal is put in a mode without echo, and Ctrl-C, Ctrl-D or ``q`` end
it (exit 0), as SIGTERM does. A lost connection is rejoined, as at the prompt (given
several servers, the others first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from chatctl.addresses import Address
from chatctl.client import ChatClient, ClaimBook, ClientError, Dismissed, rounds, worth_retrying
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.ui.chat import JoinOptions, going_to, receive
from chatctl.ui.commands import Conversation
from chatctl.ui.output import Show
from chatctl.ui.render import notice_line_now


class _Spaced(Show):
    """In a terminal, every line followed by a blank one: readable from the back."""

    def __call__(self, line: Text) -> None:
        super().__call__(line)
        if self.console is not None:
            self.console.print()


def header(client: ChatClient) -> Text:
    """``#lobby · fractions, page 12 · 24 here``: what the screen shows."""
    states = {state.room: state for state in client.joined}
    text = Text()
    for room in client.rooms.names():
        state = states.get(room)
        topic = client.rooms.topic(room)
        text.append(room, style="bold reverse")
        if topic:
            text.append(f"  {topic}", style="bold")
        if state is not None:
            text.append(f"  · {state.online} here", style="dim")
        text.append("\n")
    text.append("read-only: q or Ctrl-C closes it", style="dim")
    return text


async def run_projector(
    client: ChatClient,
    servers: Sequence[Address],
    on: int,
    options: JoinOptions,
    *,
    terminal: bool,
) -> int:
    """Show the rooms until Ctrl-C or SIGTERM (exit 0) or rejoining is pointless.

    ``client`` is joined to ``servers[on]``; a rejoin may be to another of ``servers``.
    """
    console = Console(force_terminal=True, highlight=False, soft_wrap=True) if terminal else None
    show = _Spaced(console, None if terminal else sys.stdout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    with contextlib.ExitStack() as keys:
        if terminal and sys.stdin is not None and sys.stdin.isatty():
            keys.enter_context(_quiet_keys(sys.stdin.fileno(), stop))
        return await _project(client, servers, on, options, show, stopping)


async def _project(
    client: ChatClient,
    servers: Sequence[Address],
    on: int,
    options: JoinOptions,
    show: Show,
    stopping: asyncio.Future[Literal[True]],
) -> int:
    loop = asyncio.get_running_loop()
    try:
        while True:
            show(header(client))
            watching = asyncio.ensure_future(receive(client, show, Conversation()))
            either: set[asyncio.Future[Any]] = {watching, stopping}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
                await client.leave()
                return ExitCode.OK
            error = watching.result()
            await client.close()
            if isinstance(error, Dismissed):
                show(notice_line_now(str(error), "bold red"))
                return exit_code_for(error)
            rejoined = await _rejoin(client, servers, on, options, show, stopping)
            if isinstance(rejoined, int):
                return rejoined
            on, client = rejoined
    finally:
        stopping.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await client.close()


#: Keys that close the screen: Ctrl-C, Ctrl-D, q.
_QUIT_KEYS = frozenset(b"\x03\x04qQ")


@contextlib.contextmanager
def _quiet_keys(fd: int, stop: asyncio.Event) -> Iterator[None]:
    """The terminal without echo, line editing or signals while the screen is up: a key
    pressed is read here (a quit key stops), never printed over the room."""
    saved = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            pressed = os.read(fd, 64)
        except OSError:
            pressed = b"q"
        if not pressed or _QUIT_KEYS.intersection(pressed):
            stop.set()

    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _rejoin(
    old: ChatClient,
    servers: Sequence[Address],
    lost: int,
    options: JoinOptions,
    show: Show,
    stopping: asyncio.Future[Literal[True]],
) -> tuple[int, ChatClient] | int:
    """Join again (the other servers first, then backing off) until it works (the
    server's index and the client), cannot (the exit code) or Ctrl-C (0)."""
    rooms = [state.room for state in old.joined] or options.rooms
    for index, delay in rounds(len(servers), lost):
        going = going_to(servers, index, delay, first=True)
        show(notice_line_now(f"connection lost; {going}", "yellow"))
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), delay)
        if stopping.done():
            return ExitCode.OK
        server = servers[index]
        try:
            return index, await ChatClient.join(
                server.host,
                server.port,
                old.name,
                rooms=rooms,
                tls=options.tls,
                password=options.password,
                claims=ClaimBook.default(),
                history=options.history or None,
                replace=True,
                read_only=True,
            )
        except ClientError as exc:
            if not worth_retrying(exc):
                show(notice_line_now(f"cannot rejoin: {exc}", "bold red"))
                return exit_code_for(exc)
    raise AssertionError("rounds() never ends")  # pragma: no cover
