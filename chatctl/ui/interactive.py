"""The interactive ``chatctl join``: a prompt that stays usable while the connection comes and goes.

How the prompt and the receive loop share the terminal: prompt_toolkit's
``prompt_async`` owns the input line and ``patch_stdout(raw=True)`` turns every
write to stdout into "erase the prompt, print, redraw the prompt with what was
typed so far". The receive loop therefore just prints Rich output to stdout.
``raw=True`` lets Rich's colour codes through; that is safe only because every
untrusted string was escaped by ``protocol.clean_frame`` before it got here.

The prompt names the room you type into (``[#ops] alice>``); Alt-1..9 switch
rooms, Tab completes commands, rooms and the names of the people in the room,
Ctrl-C clears a half-typed line and leaves from an empty one.

When the connection is lost, or the server shuts down, the client keeps the
prompt and rejoins under the same name and in the same rooms, waiting 1, 2, 4, 8,
16, then 30 seconds between attempts (``client.backoff``). Given several servers, it
tries the others at once, in list order after the lost one, and waits only before each
round of them all (``client.rounds``); every notice names the server. Nothing
is silently lost: lines the lost connection never relayed are listed as not sent, and lines
typed while offline are not queued but reported at once. The rejoin asks for the
same history as the first join, and shows of it only the messages after the last
one seen in each room: what was missed meanwhile (up to that many), never one twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from chatctl import commands
from chatctl.addresses import Address
from chatctl.client import (
    ChatClient,
    ClaimBook,
    ClientError,
    Dismissed,
    Refused,
    rounds,
    worth_retrying,
)
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import ErrorCode
from chatctl.ui.chat import JoinOptions, going_to, receive, welcome, where_shown
from chatctl.ui.commands import Conversation, run
from chatctl.ui.output import Show
from chatctl.ui.prompt import make_session
from chatctl.ui.render import notice_line_now, unsent_line

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

#: Seconds to wait for the server to close after we said goodbye.
LEAVE_TIMEOUT = 2.0


async def run_interactive(
    client: ChatClient, servers: Sequence[Address], on: int, options: JoinOptions
) -> int:
    """Chat at a prompt until the user leaves or rejoining is pointless; the exit code.

    ``client`` is joined to ``servers[on]``; a rejoin may be to another of ``servers``.
    """
    from prompt_toolkit.patch_stdout import patch_stdout

    # file=None: Rich looks up sys.stdout at each print, i.e. the patched proxy.
    console = Console(force_terminal=True, highlight=False, soft_wrap=True)
    show = Show(console)
    link = _Link(client, servers, on, show, options)
    session = make_session(link)
    # Raw mode for the whole session, not only while a prompt runs: keys typed between
    # one Enter and the next prompt would otherwise be echoed by the terminal itself.
    with session.input.raw_mode(), patch_stdout(raw=True):
        show(welcome(client, where=where_shown(servers, on)))
        keeper = asyncio.create_task(link.keep(session))
        try:
            while True:
                asking = asyncio.ensure_future(_ask(session))
                await asyncio.wait({asking, keeper}, return_when=asyncio.FIRST_COMPLETED)
                if keeper.done():
                    asking.cancel()
                    await asyncio.gather(asking, return_exceptions=True)
                    return keeper.result()
                line = asking.result()
                if line is None or await link.send(line):
                    return await link.leave()
                session.app.invalidate()  # the prompt may name another room now
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await link.close()


async def _ask(session: PromptSession[str]) -> str | None:
    """One line from the user; None for Ctrl-D, or Ctrl-C on an empty line.

    Caught here because a KeyboardInterrupt escaping a task stops the whole loop.
    """
    try:
        return await session.prompt_async()
    except (EOFError, KeyboardInterrupt):
        return None


class _Link:
    """The connection behind the prompt: ``client`` is None while offline."""

    def __init__(
        self,
        client: ChatClient,
        servers: Sequence[Address],
        on: int,
        show: Show,
        options: JoinOptions,
    ) -> None:
        self.client: ChatClient | None = client
        self.servers = servers
        #: The index in ``servers`` of the one joined (or lost last).
        self.on = on
        self.options = options
        self.name = client.name
        self.show = show
        self.conversation = Conversation(options.history or None)
        #: Where we were when the connection was lost: rejoined there.
        self._rooms: list[str] | None = options.rooms
        self._current: str | None = None
        #: After a rejoin: by room, the last ``seq`` seen before the loss.
        self._seen: dict[str, int] = {}
        #: By id, lines sent but not seen coming back before a loss: the rejoin's replay
        #: tells which were relayed after all.
        self._unsure: dict[str, str] = {}

    def current(self) -> ChatClient | None:
        return self.client

    async def keep(self, session: PromptSession[str]) -> int:
        """Show what arrives; after each loss, rejoin. Returns when we left or must stop."""
        while True:
            client = self.client
            assert client is not None  # noqa: S101  narrows: keep() runs only while connected
            error = await receive(
                client, self.show, self.conversation, self.options.bell, self._seen, self._unsure
            )
            if client.leaving:
                return ExitCode.OK
            if isinstance(error, Dismissed):  # not a loss: rejoining would close that one
                self.show(notice_line_now(str(error), "bold red"))
                await client.close()
                return exit_code_for(error)
            # Offline from here: report the loss before anything else can print.
            self.client = None
            self.name = client.name
            self._rooms, self._current = client.rooms.names(), client.rooms.current
            lost = {room: view.seq for room, view in client.rooms.rooms.items()}
            session.app.invalidate()
            plan = rounds(len(self.servers), self.on)
            index, delay = next(plan)
            why = str(error) if error else f"connection to {client.where} closed by the server"
            going = going_to(self.servers, index, delay, first=True)
            self.show(notice_line_now(f"{why}; {going}", "yellow"))
            unconfirmed = client.unconfirmed.take_by_id()
            for line in unconfirmed.values():
                self.show(unsent_line(time.time(), line, unsure=True))
            self._unsure.update(unconfirmed)
            await client.close()
            code = await self._rejoin(index, delay, plan, lost)
            if code is not None:
                return code
            session.app.invalidate()

    async def _rejoin(
        self,
        index: int,
        delay: float,
        plan: Iterator[tuple[int, float]],
        lost: dict[str, int],
    ) -> int | None:
        """Try to join again until it works (None) or cannot work (the exit code): first
        ``servers[index]`` after ``delay`` seconds, then as ``plan`` says.

        ``lost``: the last ``seq`` seen in each room. A room whose ``seq`` is now lower
        is not the one we saw (a server that lost its history, or another server outside
        the lost one's cluster): all of its replay is new.
        """
        attempt = 0
        options = self.options
        several = len(self.servers) > 1
        while True:
            await asyncio.sleep(delay)
            attempt += 1
            server = self.servers[index]
            try:
                client = await ChatClient.join(
                    server.host,
                    server.port,
                    self.name,
                    rooms=self._rooms,
                    tls=options.tls,
                    password=options.password,
                    claims=ClaimBook.default(),
                    history=options.history or None,
                    replace=True,
                )
            except ClientError as exc:
                if not worth_retrying(exc):
                    self.show(notice_line_now(f"cannot rejoin: {exc}", "bold red"))
                    return exit_code_for(exc)
                index, delay = next(plan)
                why = exc.reason
                if isinstance(exc, Refused):
                    if delay:  # not when another server is tried at once
                        delay = max(delay, exc.retry_after or 0.0)
                    if exc.code == ErrorCode.NAME_TAKEN:
                        why += " (the old session may still be open)"
                failed = f"attempt {attempt} failed{f' on {server}' if several else ''}"
                going = going_to(self.servers, index, delay, first=False)
                self.show(notice_line_now(f"{failed}: {why}; {going}", "yellow"))
                continue
            if self._current is not None and self._current in client.rooms:
                client.rooms.switch(self._current)
            self.client, self.on = client, index
            self._seen = {
                state.room: lost[state.room]
                for state in client.joined
                if state.room in lost and state.seq >= lost[state.room]
            }
            self.show(
                welcome(client, hint=False, again=True, where=where_shown(self.servers, index))
            )
            return None

    async def send(self, line: str) -> bool:
        """Run one typed line; True when it asks to leave."""
        command = commands.parse(line)
        if isinstance(command, commands.Quit):
            return True
        if isinstance(command, commands.Text) and not line.strip():
            return False
        if self.client is None and not isinstance(command, commands.Help | commands.Mistake):
            self.show(unsent_line(time.time(), line, offline=True))
            return False
        return await run(self.client, command, self.conversation, self.show)

    async def leave(self) -> int:
        """Say goodbye if connected, and wait (a little) for the server to close."""
        client = self.client
        if client is not None and not client.ended:
            await client.leave()
            await client.wait_ended(LEAVE_TIMEOUT)
        return ExitCode.OK

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
