"""``chatctl join``: the line client (pipes), and what it shares with the interactive one.

Without a terminal on both stdin and stdout there is no prompt at all: each
stdin line is a message to the current room (with ``--commands``, a line
starting with ``/`` is a command, as at the prompt), the conversation goes to
stdout as plain lines, and notes about the session go to stderr so a pipe
carries only the conversation. It asks for no history unless ``--history N``
says so (a bot is not to be flooded with the past, nor made to act on it again),
and prints replayed messages with their date in the stamp. A piped client does
not reconnect: a lost connection ends it (exit 6, or 7 when the server announced
its shutdown), after listing what was not relayed.

With a terminal, ``chatctl.ui.interactive`` runs the prompt instead. Given several
servers, every mode joins the first that answers, saying on stderr which it skipped.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace

from rich.console import Console
from rich.text import Text

from chatctl import commands, eventloop
from chatctl.addresses import Address
from chatctl.client import (
    ChatClient,
    ClaimBook,
    ClientError,
    ConnectionLost,
    TlsOptions,
    first_answer,
)
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import (
    Left,
    Message,
    NickChanged,
    Private,
    RoomState,
    ServerFrame,
)
from chatctl.ui.access import AskUser, run_asking, worth_asking
from chatctl.ui.commands import Conversation, run
from chatctl.ui.errors import print_error, print_skipped
from chatctl.ui.frames import View, render_frame
from chatctl.ui.output import Show
from chatctl.ui.pages import Page, show_page
from chatctl.ui.render import (
    divider_line,
    mentions,
    notice_line,
    unsent_line,
    welcome_line,
)
from chatctl.ui.stdin import MAX_READ_AHEAD, start_stdin_reader
from chatctl.wirelimits import INTERACTIVE_HISTORY

#: At end of piped input, wait for the server as long as frames keep coming (it may
#: pace a fast sender), but no longer than this many seconds without any.
SETTLE_IDLE = 10.0


@dataclass(frozen=True)
class JoinOptions:
    """How ``chatctl join`` connects and behaves, besides where and as whom."""

    rooms: list[str] | None = None
    tls: TlsOptions | None = None
    password: str | None = None
    #: Piped lines starting with ``/`` are commands (for bots); otherwise text.
    commands: bool = False
    #: Ring the terminal bell on a mention or a private message.
    bell: bool = True
    #: Past messages to ask for in each room entered (None: the mode's default,
    #: INTERACTIVE_HISTORY at a terminal, none piped; ``run_join`` settles it).
    history: int | None = None
    #: A projector screen: no input, the room shown with room to breathe, nothing sent.
    read_only: bool = False


def run_join(servers: Sequence[Address], name: str, options: JoinOptions | None = None) -> int:
    """Join, chat until the user leaves or the server goes; returns the exit code.

    ``servers``: the first that answers is joined (one that is not there is skipped,
    with a line on stderr); after a loss the others are tried first. In a terminal, an
    unknown TLS server or a missing password is asked about first
    (``chatctl.ui.access``), before the chat prompt starts.
    """
    base = options or JoinOptions()
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    if base.read_only:  # nothing is read from stdin: a terminal on stdout is enough
        interactive = sys.stdout.isatty()
    if base.history is None:
        base = replace(base, history=INTERACTIVE_HISTORY if interactive else 0)

    def attempt(tls: TlsOptions | None, password: str | None) -> int:
        chosen = replace(base, tls=tls, password=password)
        return eventloop.run(_join(servers, name, interactive, chosen))

    return run_asking(attempt, base.tls, base.password, str(servers[0]))


async def _join(
    servers: Sequence[Address], name: str, interactive: bool, options: JoinOptions
) -> int:
    tried: list[Address] = []

    async def attempt(server: Address) -> ChatClient:
        tried.append(server)
        return await ChatClient.join(
            server.host,
            server.port,
            name,
            rooms=options.rooms,
            tls=options.tls,
            password=options.password,
            claims=ClaimBook.default(),
            history=options.history or None,
            replace=True,  # our own session left behind (a network gone) goes
            read_only=options.read_only,
        )

    try:
        on, client = await first_answer(servers, attempt, print_skipped)
    except ClientError as exc:
        if worth_asking(exc, interactive, options.password):
            raise AskUser(exc, str(tried[-1])) from None
        print_error(str(exc))
        return exit_code_for(exc)
    if options.read_only:
        from chatctl.ui.projector import run_projector

        return await run_projector(client, servers, on, options, terminal=interactive)
    if interactive:
        from chatctl.ui.interactive import run_interactive

        # It closes the client(s) itself; it rejoins with the same options.
        return await run_interactive(client, servers, on, options)
    try:
        return await _piped(client, options, where_shown(servers, on))
    finally:
        await client.close()


def where_shown(servers: Sequence[Address], on: int) -> str | None:
    """The server to name in notices: only when there is a choice of them."""
    return str(servers[on]) if len(servers) > 1 else None


def going_to(servers: Sequence[Address], index: int, delay: float, *, first: bool) -> str:
    """``reconnecting to HOST:PORT in 1 s…``: the next reconnection attempt, in words
    (with one server, as ever: ``reconnecting in 1 s…``, ``retrying in 2 s…``)."""
    if len(servers) == 1:
        return f"{'reconnecting' if first else 'retrying'} in {delay:g} s…"
    after = f" in {delay:g} s" if delay else ""
    return f"{'reconnecting to' if first else 'trying'} {servers[index]}{after}…"


def welcome(
    client: ChatClient, *, hint: bool = True, again: bool = False, where: str | None = None
) -> Text:
    return welcome_line(
        client.name, client.welcome.server, client.joined, hint=hint, again=again, where=where
    )


async def receive(
    client: ChatClient,
    show: Show,
    conversation: Conversation,
    bell: bool = False,
    seen: Mapping[str, int] | None = None,
    unsure: dict[str, str] | None = None,
) -> ClientError | None:
    """Show frames until the connection ends; the error that ended it, if any.

    ``seen``: by room, the last ``seq`` shown before a reconnection; the messages the
    rejoin replays up to it are not shown again (until the room is entered anew).
    ``unsure``: by id, our lines not seen coming back before the loss; one in the replay
    was relayed after all, the rest are reported not sent once the replay is over.
    Replayed messages never ring.
    """
    last_shown: tuple[object, ...] = ()
    skip = dict(seen or {})
    # After a reconnection only what was missed is shown: no divider there.
    news = Dividers([] if seen else client.joined)
    try:
        async for frame in _settling(client, unsure or {}, show):
            multi = len(client.rooms) > 1
            if isinstance(frame, RoomState):
                skip.pop(frame.room, None)  # a later join: its replay is all news
                news.expect(frame)
            elif _shown_before(frame, skip):
                continue
            if isinstance(frame, Message) and frame.history:
                divider = news.before(frame)
                if divider is not None:
                    show(divider)
            if isinstance(frame, Page):
                show_page(frame, show, conversation, View(client.name, multi_room=multi))
                continue
            if isinstance(frame, NickChanged | Left):
                # Someone in several of our rooms: one line, not one per room.
                key = (type(frame), frame.name, frame.time)
                if key == last_shown:
                    continue
                last_shown, multi = key, False
            view = View(client.name, multi_room=multi, dated_history=not show.dates)
            line = render_frame(frame, view)
            if line is not None:
                show(line)
                if isinstance(frame, Message) and frame.room is not None:
                    client.shown(frame.room, frame.seq)
                    conversation.shown(frame.room, frame.seq)
            ring = False
            if isinstance(frame, Private) and not client.mine(frame.name):
                conversation.last_private = frame.name
                ring = True
            elif isinstance(frame, Message) and not frame.history and not client.mine(frame.name):
                ring = mentions(frame.text, client.name)
            if ring and bell:
                show.bell()
    except ClientError as exc:
        return exc
    return None


async def _settling(
    client: ChatClient, unsure: dict[str, str], show: Show
) -> AsyncIterator[ServerFrame]:
    """``client``'s frames; after the handshake's replay (the ``room`` frames say how long
    it is), each line of ``unsure`` the replay did not hold is reported not sent."""
    left = sum(state.history for state in client.joined) if unsure else 0

    def report() -> None:
        for text in unsure.values():
            show(unsent_line(time.time(), text))
        unsure.clear()

    if not left:
        report()
    async for frame in client:
        yield frame  # shown before what follows
        if left and isinstance(frame, Message) and frame.history:
            if client.mine(frame.name) and frame.id is not None:
                unsure.pop(frame.id, None)  # it was relayed, and it is in the history
            left -= 1
            if not left:
                report()


class Dividers:
    """Where "— N new since you left —" goes in each room's replay: before its first
    unread message (the ``room`` frame says how many of the replayed ones are)."""

    def __init__(self, states: list[RoomState]) -> None:
        self._read: dict[str, int] = {}
        self._state: dict[str, RoomState] = {}
        for state in states:
            self.expect(state)

    def expect(self, state: RoomState) -> None:
        if state.unread:
            self._read[state.room] = state.history - state.unread
            self._state[state.room] = state
        else:
            self._read.pop(state.room, None)

    def before(self, message: Message) -> Text | None:
        """The divider to show before ``message``, if it is the first new one."""
        room = message.room or ""
        left = self._read.get(room)
        if left is None:
            return None
        if left > 0:
            self._read[room] = left - 1
            return None
        del self._read[room]
        state = self._state.pop(room)
        return divider_line(state.unread + state.more, state.more, room)


def _shown_before(frame: ServerFrame, seen: Mapping[str, int]) -> bool:
    """A replayed message that was shown before the reconnection (``seq`` up to ``seen``)."""
    if not isinstance(frame, Message) or not frame.history or frame.room is None:
        return False
    return frame.seq <= seen.get(frame.room, 0)


# --------------------------------------------------------------------------- pipes


async def _piped(client: ChatClient, options: JoinOptions, where: str | None) -> int:
    show, warn = Show(None, sys.stdout), Show(None, sys.stderr)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        welcome(client, hint=False, where=where)
    )
    conversation = Conversation(options.history or None)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    room = threading.BoundedSemaphore(MAX_READ_AHEAD)
    start_stdin_reader(asyncio.get_running_loop(), lines, room)
    receiver = asyncio.create_task(receive(client, show, conversation))
    while True:
        getting = asyncio.ensure_future(lines.get())
        await asyncio.wait({getting, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done():
            getting.cancel()
            return _ended(client, receiver.result(), warn)
        line = getting.result()
        room.release()
        if line is None or line.strip() in commands.QUIT_WORDS:
            return await _finish(client, receiver, warn)
        # A log line starting with "/" stays text unless --commands asks otherwise.
        command = commands.parse(line) if options.commands else commands.Text(line)
        if await run(client, command, conversation, warn):
            return await _finish(client, receiver, warn)


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
        warn(notice_line(time.time(), str(error), "bold red"))
    for line in client.unconfirmed.take():
        warn(unsent_line(time.time(), line))
    if error is not None:
        return exit_code_for(error)
    return ExitCode.SERVER_SHUTDOWN if client.shutdown is not None else ExitCode.OK
