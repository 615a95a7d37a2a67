"""The client core: join, the requests of protocol version 2, and the receive loop.

asyncio only, no terminal code, so tests, bots and the terminal UI all drive the
same object. ``async for frame in client`` is the receive loop; it keeps
``rooms`` (who is where) and ``unconfirmed`` (what has not come back) up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable

from chatctl.client.claims import ClaimBook
from chatctl.client.connection import Connection, TlsOptions
from chatctl.client.errors import Banned, ConnectionLost, Dismissed, Refused, Replaced
from chatctl.client.handshake import handshake
from chatctl.client.marks import ReadMarks
from chatctl.client.requests import Requests
from chatctl.client.rooms import Rooms
from chatctl.client.unconfirmed import Unconfirmed
from chatctl.protocol import (
    MAX_HISTORY,
    PROTOCOL_VERSION,
    Bye,
    Claim,
    ClientFrame,
    Error,
    ErrorCode,
    Hello,
    Join,
    Message,
    Msg,
    Nick,
    NickChanged,
    Part,
    Parted,
    Ping,
    Pong,
    Private,
    ProtocolError,
    RoomState,
    Say,
    ServerFrame,
    Shutdown,
    Welcome,
    check_name,
    check_room,
    check_text,
    encode,
    name_key,
)

#: Seconds to connect and to get the answer to a handshake or a status request.
DEFAULT_TIMEOUT = 10.0
#: Seconds of silence from the server before the client pings it, then seconds to wait
#: for anything at all before it gives the connection up (the server's own rule for clients).
DEFAULT_PING_INTERVAL = 60.0
DEFAULT_PING_TIMEOUT = 30.0


class ChatClient(Requests):
    """A joined participant.

    The receive loop answers the server's pings, pings a server that has been
    silent for ``ping_interval`` seconds and gives the connection up (ConnectionLost)
    when nothing at all arrives within ``ping_timeout`` more: TCP alone takes hours
    to notice a half-open connection.
    """

    def __init__(
        self,
        conn: Connection,
        welcome: Welcome,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        claims: ClaimBook | None = None,
    ) -> None:
        self._conn = conn
        self._claims = claims
        self.welcome = welcome
        self.name = welcome.name
        self.where = conn.where
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.unconfirmed = Unconfirmed()
        self.rooms = Rooms()
        #: The rooms of the handshake, as the server stated them (filled by ``join``).
        self.joined: list[RoomState] = []
        self.shutdown: Shutdown | None = None
        #: Why the server closed this connection for another with our name (``replaced``).
        #: The error the server closed our session with (``replaced``, ``banned``).
        self._dismissed: Error | None = None
        self._backlog: deque[ServerFrame] = deque()
        #: ``join`` requests not answered yet, with the room typed into before each.
        self._switched: dict[str, str | None] = {}
        self._leaving = False
        self._ended = False
        self._activity = asyncio.Event()  # set on every frame and when the loop ends
        if claims is not None and welcome.server_id is not None:
            claims.seen(self.where, welcome.server_id)
        #: Read marks by room, and those not sent yet.
        self._marks = ReadMarks(conn.write)

    @classmethod
    async def join(
        cls,
        host: str,
        port: int,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        rooms: list[str] | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        tls: TlsOptions | None = None,
        password: str | None = None,
        claims: ClaimBook | None = None,
        history: int | None = None,
        replace: bool = False,
        read_only: bool = False,
    ) -> ChatClient:
        """Connect and handshake, in ``rooms`` (None: the server's ``#lobby``).

        With ``claims``, the name's secret for this server is presented, and a secret
        the server gives (the name's first use there) is kept in it. ``history``: ask
        for up to that many past messages of each room (0..MAX_HISTORY; None asks for
        none). They come after each room's ``room`` frame, as ``message`` frames with
        ``history`` true, oldest first (a server keeping none sends none). ``replace``:
        with the name's secret, take it over from a connection still holding it (ours,
        left behind); that one ends with Replaced. ``read_only``: watch, never send (the
        server refuses anything that would).

        Returns once the server has put us in every room; raises Unreachable,
        Refused, ConnectionLost, or with TLS Untrusted (UnknownServer),
        FingerprintChanged or WrongTransport.
        """
        _check_history(history)
        try:
            check_name(name)  # say so before touching the network
            wanted = None if rooms is None else list(dict.fromkeys(check_room(r) for r in rooms))
        except ProtocolError as exc:
            raise Refused(exc.code, exc.message) from None
        conn, welcome = await handshake(
            Hello(PROTOCOL_VERSION, name, password, wanted, history, None, replace, read_only),
            host,
            port,
            timeout,
            tls,
            claims,
        )
        try:
            client = cls(conn, welcome, ping_interval, ping_timeout, claims)
            await client._read_rooms(len(wanted) if wanted is not None else 1, timeout)
        except BaseException:
            await conn.close()
            raise
        return client

    async def _read_rooms(self, count: int, timeout: float) -> None:
        """Read up to the handshake's ``room`` frames; what comes between is kept for later."""
        while len(self.joined) < count:
            frame = await self._conn.read_reply(timeout)
            self.rooms.apply(frame, self.name)
            if isinstance(frame, Claim):
                self._keep(frame)
            elif isinstance(frame, RoomState):
                self.joined.append(frame)
            else:
                self._backlog.append(frame)

    @property
    def leaving(self) -> bool:
        """True once ``leave`` was called."""
        return self._leaving

    @property
    def ended(self) -> bool:
        """True once the receive loop has ended (either way)."""
        return self._ended

    # requests

    async def say(self, text: str, room: str | None = None, *, action: bool = False) -> str:
        """Send a message to ``room`` (default: the current room); its id.

        Raises ProtocolError if it is empty or too long to send, or names no room.
        The text stays in ``unconfirmed`` until it comes back from the server.
        """
        check_text(text)
        target = check_room(room) if room is not None else self.rooms.current
        if target is None:
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "you are in no room: /join one first")
        id = self.unconfirmed.sent(text)
        await self._send(Say(text, target, id, action))
        return id

    async def msg(self, to: str, text: str, *, action: bool = False) -> str:
        """Send a private message to ``to``; its id (confirmed by the echo)."""
        check_text(text)
        check_name(to)
        id = self.unconfirmed.sent(text)
        await self._send(Msg(to, text, id, action))
        return id

    async def join_room(self, room: str, history: int | None = None) -> str:
        """Enter ``room`` and type into it from now on; the request's id.

        ``history``: up to that many of its past messages, as in ``join``.
        """
        room = check_room(room)
        _check_history(history)
        id = self.unconfirmed.new_id()
        self._switched[id] = self.rooms.current
        self.rooms.switch(room)
        await self._send(Join(room, id, history))
        return id

    async def part(self, room: str) -> str:
        """Leave ``room``; how far we read there is told first (after the part, it could not be)."""
        room = check_room(room)
        self._marks.send()
        return await self._request(lambda id: Part(room, id))

    async def nick(self, name: str) -> str:
        name = check_name(name)
        secret = self.secret_for(name)
        return await self._request(lambda id: Nick(name, id, secret))

    async def _request(self, make: Callable[[str], ClientFrame]) -> str:
        """Send the frame ``make`` builds around a new id; the id (errors about it carry it)."""
        id = self.unconfirmed.new_id()
        await self._send(make(id))
        return id

    async def _send(self, frame: ClientFrame) -> None:
        self._conn.write(encode(frame))
        with contextlib.suppress(ConnectionError):  # the receive loop reports it
            await self._conn.writer.drain()

    def shown(self, room: str, seq: int) -> None:
        """The user has been shown ``room`` up to ``seq``: the server's read mark follows
        (``client.marks``), so "since you left" starts after it. Only servers with
        claimed names keep read marks; others are not told."""
        if self.welcome.server_id is not None:
            self._marks.shown(room, seq)

    async def leave(self) -> None:
        """Say goodbye; the receive loop then ends when the server closes."""
        if not self._leaving:
            self._leaving = True
            self._marks.send()
            self._conn.write(encode(Bye()))
            with contextlib.suppress(ConnectionError):
                await self._conn.writer.drain()

    # waiting

    async def wait_confirmed(self, idle_timeout: float) -> bool:
        """Wait until every message sent has come back or been refused.

        Waits as long as frames keep arriving: False if none arrived for
        ``idle_timeout`` seconds, or the receive loop ended first. The receive
        loop must be running (someone iterating over the client) meanwhile.
        """
        return await self._wait_until(lambda: not self.unconfirmed, idle_timeout)

    async def wait_ended(self, idle_timeout: float) -> bool:
        """Wait until the receive loop has ended, as long as frames keep arriving."""
        return await self._wait_until(lambda: self._ended, idle_timeout)

    async def _wait_until(self, done: Callable[[], bool], idle_timeout: float) -> bool:
        while not done():
            if self._ended:
                return False
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), idle_timeout)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        await self._conn.close()

    # the receive loop

    def __aiter__(self) -> AsyncIterator[ServerFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[ServerFrame]:
        """Yield frames until the connection ends; answers pings by itself.

        Ends quietly after we left or the server announced its shutdown; raises
        Replaced when our name joined again elsewhere, and otherwise, at an end of
        stream or from a server gone silent, ConnectionLost.
        """
        try:
            while True:
                if self._backlog:
                    frame: ServerFrame | None = self._backlog.popleft()
                else:
                    frame = await self._next_frame()
                    if frame is not None:
                        self.rooms.apply(frame, self.name)
                self._activity.set()
                if frame is None:
                    if self._leaving or self.shutdown is not None:
                        return
                    if self._dismissed is not None:
                        raise _dismissal(self._dismissed, self.where)
                    raise ConnectionLost(f"connection to {self.where} lost")
                match frame:
                    case Ping():
                        self._conn.write(encode(Pong()))
                        continue
                    case Pong():
                        continue
                    case Message(history=True):
                        pass  # replayed: an old message, never the echo of one just sent
                    case Message(name=name, id=id) | Private(name=name, id=id) if self.mine(name):
                        self.unconfirmed.echoed(id)
                    case (
                        Error(code=ErrorCode.REPLACED)
                        | Error(code=ErrorCode.BANNED, id=None, room=None)
                    ):
                        self._dismissed = frame  # said once, when the stream ends
                        continue
                    case Error(id=id):
                        self.unconfirmed.refused(id)
                        if id in self._switched:  # the join was refused: back where we were
                            self.rooms.switch_back(self._switched.pop(id))
                    case RoomState():
                        self._switched.clear()
                    case Parted(room=room, name=name) if self.mine(name):
                        self._marks.forget(room)
                    case NickChanged(name=old, new=new) if self.mine(old):
                        self.name = new
                    case Claim():  # the core's own business, like a ping
                        self._keep(frame)
                        continue
                    case Shutdown():
                        self.shutdown = frame
                yield frame
        finally:
            self._ended = True
            self._activity.set()

    def _keep(self, claim: Claim) -> None:
        """The server gave a name's secret: kept, so the name stays ours (a bad claims
        file must not end the chat: the name is then simply not kept)."""
        if self._claims is not None:
            with contextlib.suppress(OSError):
                self._claims.keep(self.where, claim.server_id, claim.name, claim.secret)

    def secret_for(self, name: str) -> str | None:
        """Our secret for ``name`` on this server, if we have one (for ``/nick``)."""
        if self._claims is None or self.welcome.server_id is None:
            return None
        with contextlib.suppress(OSError):
            return self._claims.secret(self.welcome.server_id, name)
        return None

    def mine(self, name: str) -> bool:
        """Whether ``name`` is ours."""
        return name_key(name) == name_key(self.name)

    async def _next_frame(self) -> ServerFrame | None:
        """The next frame; after ``ping_interval`` of silence, ping and wait ``ping_timeout``."""
        try:
            async with asyncio.timeout(self.ping_interval):
                return await self._conn.read_frame()
        except TimeoutError:
            pass
        self._conn.write(encode(Ping()))
        try:
            async with asyncio.timeout(self.ping_timeout):
                return await self._conn.read_frame()
        except TimeoutError:
            why = f"the server stopped answering (no reply for {self.ping_timeout:g} s)"
            raise ConnectionLost(f"connection to {self.where} lost: {why}", why) from None


def _dismissal(error: Error, where: str) -> Dismissed:
    kind = Banned if error.code == ErrorCode.BANNED else Replaced
    return kind(f"{where}: {error.message}", error.message)


def _check_history(history: int | None) -> None:
    """A count the protocol allows (a server refuses the whole frame otherwise)."""
    if history is not None and not 0 <= history <= MAX_HISTORY:
        raise ValueError(f"history must be 0..{MAX_HISTORY}, not {history}")
