"""Server core: a hub that orders and fans out messages, one session per connection.

asyncio only, no terminal code: the connection log is whatever ``observer``
the caller passes (``chatctl.ui.serverlog`` in the CLI, a list in tests).

The path of one message: ``Session.data_received`` feeds the decoder, each frame
goes to ``Hub.handle``; a ``say`` is stamped with a sequence number and the time,
encoded once, and the same bytes are appended to every member's pending list.
Once per loop iteration ``Hub._flush`` hands each session's pending bytes to
its transport in one write. No write ever waits: the transport buffers, and a
session whose buffer passes ``max_queue_bytes`` is aborted (``slow_consumer``)
instead of holding up the room. Everything runs on one event loop, so the order
in which the hub appends is the order every participant, the sender included,
receives.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chatctl import __version__
from chatctl.protocol import (
    PROTOCOL_VERSION,
    Bye,
    ClientFrame,
    Error,
    ErrorCode,
    Frame,
    Hello,
    Joined,
    Left,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Say,
    ServerInfo,
    Shutdown,
    StatusReply,
    StatusRequest,
    UserInfo,
    Welcome,
    check_name,
    check_text,
    clean_text,
    client_frame_decoder,
    encode,
    name_key,
)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``chatctl serve`` can set; the defaults are the documented ones."""

    host: str = "127.0.0.1"
    port: int = 5000
    #: A client whose unsent bytes exceed this is cut off (``slow_consumer``).
    max_queue_bytes: int = 1024 * 1024
    #: Report each relayed message to the observer (the log's ``--verbose``).
    report_messages: bool = False
    #: Seconds clients get to go after the shutdown notice before being aborted.
    shutdown_grace: float = 1.0
    backlog: int = 1024


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Listening:
    addresses: list[tuple[str, int]]


@dataclass(frozen=True)
class UserJoined:
    name: str
    address: str


@dataclass(frozen=True)
class UserLeft:
    name: str
    address: str
    reason: str


@dataclass(frozen=True)
class Refused:
    address: str
    code: str


@dataclass(frozen=True)
class MessageRelayed:
    name: str
    text: str


@dataclass(frozen=True)
class Stopping:
    users: int


ServerEvent = Listening | UserJoined | UserLeft | Refused | MessageRelayed | Stopping
Observer = Callable[[ServerEvent], None]


def _ignore(event: ServerEvent) -> None:
    """The default observer, for servers embedded in tests or other programs."""


# --------------------------------------------------------------------------- session


class Session(asyncio.Protocol):
    """One connection: decodes what it receives, buffers what it must send."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.address = "?"
        self.name: str | None = None
        self.decoder = client_frame_decoder()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.connected_at = time.time()
        self.last_said = time.monotonic()
        self.messages_sent = 0
        self.leave_reason: str | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            host = str(peer[0])
            self.address = f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
        self.hub.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        while self.leave_reason is None:
            try:
                frame = self.decoder.next_frame()
            except ProtocolError as exc:
                self.send_error(exc)
                if exc.fatal:
                    self.close("error")
                continue
            if frame is None:
                return
            self.hub.handle(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.disconnected(self, self.leave_reason or "dropped")

    # sending

    def send(self, data: bytes) -> None:
        """Queue bytes; the hub writes them at the end of this loop iteration."""
        if self.leave_reason is not None:
            return
        if not self.pending:
            self.hub.mark_dirty(self)
        self.pending.append(data)
        self.pending_bytes += len(data)

    def send_frame(self, frame: Frame) -> None:
        self.send(encode(frame))

    def send_error(self, exc: ProtocolError) -> None:
        self.send_frame(Error(code=exc.code, message=exc.message))

    def flush(self) -> None:
        transport = self.transport
        if not self.pending or transport is None or transport.is_closing():
            self.pending.clear()
            self.pending_bytes = 0
            return
        transport.write(b"".join(self.pending) if len(self.pending) > 1 else self.pending[0])
        self.pending.clear()
        self.pending_bytes = 0
        if transport.get_write_buffer_size() > self.hub.config.max_queue_bytes:
            self.abort("slow_consumer")

    @property
    def bytes_queued(self) -> int:
        buffered = self.transport.get_write_buffer_size() if self.transport else 0
        return self.pending_bytes + buffered

    # ending

    def close(self, reason: str) -> None:
        """Leave after what is queued has been written (flush, then close)."""
        if self.leave_reason is None:
            self.leave_reason = reason
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Drop at once: ``close()`` would wait for a reader that may never read."""
        if self.leave_reason is None:
            self.leave_reason = reason
        self.pending.clear()
        self.pending_bytes = 0
        if self.transport is not None:
            self.transport.abort()


# --------------------------------------------------------------------------- hub


@dataclass
class Hub:
    """The room: membership, ordering (``seq``) and fan-out."""

    config: ServerConfig
    observer: Observer = _ignore
    connections: set[Session] = field(default_factory=set)
    members: dict[str, Session] = field(default_factory=dict)
    seq: int = 0
    messages_relayed: int = 0
    leave_reasons: Counter[str] = field(default_factory=Counter)
    started_at: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)
    stopping: bool = False
    _dirty: list[Session] = field(default_factory=list)
    _flush_scheduled: bool = False
    _all_gone: asyncio.Event = field(default_factory=asyncio.Event)

    # writes

    def mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    def broadcast(self, frame: Frame) -> None:
        data = encode(frame)  # once, whatever the number of receivers
        for member in self.members.values():
            member.send(data)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # frames from sessions

    def handle(self, session: Session, frame: ClientFrame) -> None:
        match frame:
            case Say(text=text):
                self._say(session, text)
            case Hello():
                self._hello(session, frame)
            case StatusRequest():
                session.send_frame(self.status())
            case Ping():
                session.send_frame(Pong())
            case Pong():
                pass
            case Bye():
                session.close("quit")

    def _say(self, session: Session, text: str) -> None:
        if session.name is None:
            session.send_error(ProtocolError(ErrorCode.NOT_JOINED, "send hello first"))
            return
        try:
            check_text(text)
        except ProtocolError as exc:
            session.send_error(exc)
            return
        text = clean_text(text)
        session.messages_sent += 1
        session.last_said = time.monotonic()
        self.messages_relayed += 1
        self.broadcast(
            Message(seq=self._next_seq(), time=time.time(), name=session.name, text=text)
        )
        if self.config.report_messages:
            self.observer(MessageRelayed(session.name, text))

    def _hello(self, session: Session, hello: Hello) -> None:
        if session.name is not None:
            session.send_error(ProtocolError(ErrorCode.ALREADY_JOINED, "already joined"))
            return
        try:
            if hello.version != PROTOCOL_VERSION:
                raise ProtocolError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"this server speaks protocol version {PROTOCOL_VERSION}",
                )
            check_name(hello.name)
            if name_key(hello.name) in self.members:
                raise ProtocolError(ErrorCode.NAME_TAKEN, "that name is taken")
        except ProtocolError as exc:
            session.send_error(exc)
            session.close("refused")
            self.observer(Refused(session.address, exc.code))
            return
        session.name = hello.name
        session.last_said = time.monotonic()
        self.members[name_key(hello.name)] = session
        session.send_frame(
            Welcome(
                version=PROTOCOL_VERSION,
                name=hello.name,
                users=[m.name for m in self.members.values() if m.name is not None],
                server=f"chatctl {__version__}",
                seq=self.seq,
            )
        )
        self.broadcast(Joined(seq=self._next_seq(), time=time.time(), name=hello.name))
        self.observer(UserJoined(hello.name, session.address))

    def disconnected(self, session: Session, reason: str) -> None:
        self.connections.discard(session)
        if not self.connections:
            self._all_gone.set()
        if session.name is None or self.members.get(name_key(session.name)) is not session:
            return
        del self.members[name_key(session.name)]
        self.leave_reasons[reason] += 1
        if not self.stopping:
            self.broadcast(
                Left(seq=self._next_seq(), time=time.time(), name=session.name, reason=reason)
            )
        self.observer(UserLeft(session.name, session.address, reason))

    # queries

    def status(self) -> StatusReply:
        now, mono = time.time(), time.monotonic()
        users = [
            UserInfo(
                name=m.name or "",
                address=m.address,
                connected_at=m.connected_at,
                idle_seconds=round(mono - m.last_said, 3),
                messages_sent=m.messages_sent,
                bytes_queued=m.bytes_queued,
            )
            for m in self.members.values()
        ]
        info = ServerInfo(
            version=__version__,
            protocol=PROTOCOL_VERSION,
            started_at=self.started_at,
            uptime_seconds=round(now - self.started_at, 3),
            users=len(users),
            connections=len(self.connections),
            messages_relayed=self.messages_relayed,
            leave_reasons=dict(self.leave_reasons),
        )
        return StatusReply(server=info, users=users)

    # shutdown

    async def shut_down(self, grace: float) -> None:
        """Tell everyone, give them ``grace`` seconds to go, then abort the rest."""
        self.stopping = True
        self.observer(Stopping(users=len(self.members)))
        notice = encode(Shutdown(reason="server shutting down"))
        for session in list(self.connections):
            session.send(notice)
            session.close("shutdown")
        if self.connections:
            self._all_gone.clear()
            try:
                await asyncio.wait_for(self._all_gone.wait(), grace)
            except TimeoutError:
                for session in list(self.connections):
                    session.abort("shutdown")
                await asyncio.sleep(0)  # let connection_lost run for the aborted


# --------------------------------------------------------------------------- server


class ChatServer:
    """The listening socket plus its hub; ``async with ChatServer(cfg) as s:`` in tests."""

    def __init__(self, config: ServerConfig, observer: Observer = _ignore) -> None:
        self.config = config
        self.hub = Hub(config, observer)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Session(self.hub),
            self.config.host,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
        )
        self.hub.observer(Listening(self.addresses))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            for sock in self._server.sockets
        ]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.hub.shut_down(self.config.shutdown_grace)
        if self._server is not None:
            # Every connection is gone by now, so this returns at once on 3.11 and 3.12+.
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve_until(config: ServerConfig, observer: Observer, stop: asyncio.Event) -> None:
    """Run a server until ``stop`` is set, then shut it down cleanly."""
    server = ChatServer(config, observer)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
