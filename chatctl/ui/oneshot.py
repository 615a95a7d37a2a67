"""``chatctl send`` and ``chatctl tail``: one message, or a room's history and what follows.

For scripts and cron: they join under a name (claimed like any other), do one thing,
and leave. ``send`` exits 0 only once the server has relayed the message (its id came
back). ``tail --json`` prints each message as the protocol's own ``message`` frame, one
JSON object per line (keys documented in docs/protocol.md), as ``export`` does. ``join_as``
and ``reporting`` are ``export``'s too.
"""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from chatctl import eventloop
from chatctl.addresses import Address
from chatctl.client import (
    ChatClient,
    ClaimBook,
    ClientError,
    Refused,
    TlsOptions,
    first_answer,
    past,
)
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import (
    DEFAULT_ROOM,
    Error,
    ErrorCode,
    Message,
    Private,
    ProtocolError,
    ServerFrame,
)
from chatctl.ui.errors import print_error, print_skipped
from chatctl.ui.frames import View, render_frame
from chatctl.ui.timeline import json_line

#: Seconds ``send`` waits for its message to come back.
SEND_TIMEOUT = 10.0
#: Messages ``tail`` prints, and with ``--since`` at most (older ones: ``export``).
TAIL_LAST = 10
TAIL_SINCE_MAX = 10_000


def default_name() -> str:
    """Whose name a script speaks under: the login name (``--as`` or CHATCTL_NAME else)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "script"


async def join_as(
    servers: Sequence[Address],
    name: str,
    rooms: list[str],
    suffix: str,
    tls: TlsOptions | None,
    password: str | None,
) -> ChatClient:
    """Join the first of ``servers`` that answers; if the name is online already (its
    owner chatting), as ``name-suffix``."""
    claims = ClaimBook.default()

    async def attempt(server: Address) -> ChatClient:
        host, port = server.host, server.port
        try:
            return await ChatClient.join(
                host, port, name, rooms=rooms, tls=tls, password=password, claims=claims
            )
        except Refused as exc:
            if exc.code != ErrorCode.NAME_TAKEN:
                raise
        return await ChatClient.join(
            host, port, f"{name}-{suffix}", rooms=rooms, tls=tls, password=password, claims=claims
        )

    return (await first_answer(servers, attempt, print_skipped))[1]


def reporting(command: Coroutine[Any, Any, int]) -> int:
    """Run a one-shot command; a client error is one line on stderr and its exit code."""
    try:
        return eventloop.run(command)
    except ClientError as exc:
        print_error(str(exc))
        return exit_code_for(exc)


def run_send(
    servers: Sequence[Address],
    name: str,
    text: str,
    room: str | None,
    to: str | None,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    return reporting(_send(servers, name, text, room, to, tls, password))


async def _send(
    servers: Sequence[Address],
    name: str,
    text: str,
    room: str | None,
    to: str | None,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    rooms = [] if to is not None else [room or DEFAULT_ROOM]
    client = await join_as(servers, name, rooms, "send", tls, password)
    try:
        try:
            id = await (client.msg(to, text) if to is not None else client.say(text))
        except ProtocolError as exc:
            print_error(exc.message)
            return ExitCode.NOT_SENT
        return await asyncio.wait_for(_acknowledged(client, id), SEND_TIMEOUT)
    except TimeoutError:
        print_error(f"the server did not relay the message within {SEND_TIMEOUT:g} s")
        return ExitCode.NOT_SENT
    finally:
        await client.leave()
        await client.close()


async def _acknowledged(client: ChatClient, id: str) -> int:
    async for frame in client:
        match frame:
            case Message(id=echo) | Private(id=echo) if echo == id:
                return ExitCode.OK
            case Error(id=refused, message=message, code=code) if refused == id:
                print_error(f"not sent: {message} ({code})")
                return ExitCode.NOT_SENT
    return ExitCode.CONNECTION_LOST


def run_tail(
    servers: Sequence[Address],
    name: str,
    room: str,
    since: float | None,
    follow: bool,
    as_json: bool,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    return reporting(_tail(servers, name, room, since, follow, as_json, tls, password))


async def _tail(
    servers: Sequence[Address],
    name: str,
    room: str,
    since: float | None,
    follow: bool,
    as_json: bool,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    client = await join_as(servers, name, [room], "tail", tls, password)
    here = client.joined[0].room if client.joined else room
    out = _Printer(client, as_json)
    try:
        frames = aiter(client)
        got = await past(
            client, frames, here, TAIL_LAST if since is None else TAIL_SINCE_MAX, since
        )
        if got.more and since is not None:
            print_error(f"more than {TAIL_SINCE_MAX} messages since then: only the last follow")
        for message in got.messages:
            out.show(message)
        if not follow:
            return ExitCode.OK
        following = asyncio.create_task(_follow(frames, here, out))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C ends a follow: exit 0
            loop.add_signal_handler(sig, stop.set)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not following.done():
            following.cancel()
            return ExitCode.OK
        following.result()  # a ClientError that ended it, raised
        return ExitCode.CONNECTION_LOST
    finally:
        await client.leave()
        await client.close()


async def _follow(frames: AsyncIterator[ServerFrame], room: str, out: _Printer) -> None:
    async for frame in frames:
        if isinstance(frame, Message) and frame.room == room:
            out.show(frame)


class _Printer:
    """A message as a plain line (as piped ``join`` prints it) or as its JSON frame."""

    def __init__(self, client: ChatClient, as_json: bool) -> None:
        self._view = View(client.name)
        self._json = as_json

    def show(self, message: Message) -> None:
        if self._json:
            sys.stdout.write(json_line(message))
        else:
            line = render_frame(message, self._view)
            if line is not None:
                sys.stdout.write(line.plain + "\n")
        sys.stdout.flush()


def since_time(seconds: float | None) -> float | None:
    return None if seconds is None else time.time() - seconds
