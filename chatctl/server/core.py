"""Server core: a hub that orders and fans out messages, one session per connection.

asyncio only, no terminal code: the connection log is whatever ``observer``
the caller passes (``chatctl.ui.serverlog`` in the CLI, a list in tests).

The path of one message: ``Session.data_received`` feeds the decoder, each frame
goes to ``Hub.handle``; a ``say`` is stamped with a sequence number and the time,
encoded once, and appended once to the hub's outbox. Once per loop iteration
``Hub._flush`` joins the outbox once and writes those same bytes to every
member (a member with frames of its own queued, such as a welcome or an error,
gets them spliced in at the place they were queued). No write ever waits: the
transport buffers, and a session whose buffer passes ``max_queue_bytes`` is
aborted (``slow_consumer``) instead of holding up the room. Everything runs on
one event loop, so the order in which the hub queues is the order every
participant, the sender included, receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import resource
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

from chatctl import __version__
from chatctl.limits import (
    AccessList,
    AddressGate,
    ErrorBudget,
    FailureThrottle,
    Refusal,
    TokenBucket,
    parse_networks,
)
from chatctl.protocol import (
    BLANK,
    PROTOCOL_VERSION,
    WELCOME_NAMES,
    Blank,
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
from chatctl.server.config import ServerConfig
from chatctl.server.events import (
    Closed,
    Listening,
    MessageRelayed,
    Observer,
    Refused,
    Stopping,
    UserJoined,
    UserLeft,
    _ignore,
)

#: Endings of connections that never joined that are not worth a log line or a count:
#: a status query that hung up, a refused handshake (logged as Refused already).
_UNREMARKABLE = frozenset({"dropped", "quit", "refused", "shutdown"})


# --------------------------------------------------------------------------- session


class Session(asyncio.Protocol):
    """One connection: decodes what it receives, buffers what it must send.

    Reading is paused, never dropped, when the client outruns its pacing: the
    frame that found no token is held and handled when one is available.
    """

    def __init__(self, hub: Hub) -> None:
        config = hub.config
        now = time.monotonic()
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.host = "?"
        self.address = "?"
        self.name: str | None = None
        self.decoder = client_frame_decoder(config.max_frame_bytes)
        #: Frames for this session alone (welcome, errors, replies), in order...
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        #: ...and, for a member, how much of the hub's outbox it has taken already.
        self.outbox_pos = 0
        self.connected_at = time.time()
        self.opened = now
        self.last_said = now
        self.last_heard = now
        self.ping_sent: float | None = None
        self.over_soft_since: float | None = None
        self.messages_sent = 0
        self.leave_reason: str | None = None
        self.admitted = False
        #: Sent a hello or a status request: not a silent socket holding a slot.
        self.greeted = False
        self.bucket = TokenBucket(config.burst, config.rate, now)
        self.errors = ErrorBudget(config.max_errors, config.error_window)
        self.held: ClientFrame | Blank | None = None
        self.resume: asyncio.TimerHandle | None = None
        #: TLS handshake under way: nothing may be written to the raw transport.
        self.handshaking = False
        self.handshake: asyncio.Task[None] | None = None
        #: Bytes read before start_tls() took the transport over: they are the TLS layer's.
        #: uvloop starts reading right after connection_made, before the handshake task
        #: runs (the stdlib loop happens not to), so a quick ClientHello lands here.
        self.early: bytearray | None = None
        self.reported = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.host = str(peer[0])
            port = peer[1]
            self.address = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        self.hub.admit(self)

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        if self.early is not None:
            self.early += data
            return
        self.decoder.feed(data)
        if self.handshaking:
            return  # came with the handshake's end: handled once start_tls() returns
        self._process()

    def _process(self) -> None:
        """Handle buffered frames until none is left, pacing says wait, or we leave."""
        while self.leave_reason is None:
            frame, self.held = self.held, None
            if frame is None:
                try:
                    frame = self.decoder.next_line()
                except ProtocolError as exc:
                    self.send_error(exc)
                    if exc.fatal:
                        self.close(exc.code)
                    continue
                if frame is None:
                    return
            if self._costs_a_token(frame):
                wait = self.bucket.delay(time.monotonic())
                if wait > 0:
                    self._pause(frame, wait)
                    return
            if frame is not BLANK:
                self.hub.handle(self, frame)  # type: ignore[arg-type]  # BLANK is handled

    def _costs_a_token(self, frame: ClientFrame | Blank) -> bool:
        """Everything a client sends is paced, blank lines included, but for ``bye``
        and the one ``pong`` that answers our ping: a flood of anything is a flood."""
        if isinstance(frame, Bye):
            return False
        if isinstance(frame, Pong) and self.ping_sent is not None:
            self.ping_sent = None
            return False
        return True

    def _pause(self, frame: ClientFrame | Blank, wait: float) -> None:
        self.held = frame
        if self.transport is not None and self.resume is None:
            self.transport.pause_reading()
            self.resume = asyncio.get_running_loop().call_later(wait, self._resume)

    def _resume(self) -> None:
        self.resume = None
        self._process()
        if self.resume is None and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handshaking:
            return  # the handshake task reports the end, with its reason
        self._report(self.leave_reason or "dropped")

    def _report(self, reason: str) -> None:
        if self.reported:
            return
        self.reported = True
        if self.resume is not None:
            self.resume.cancel()
            self.resume = None
        self.hub.disconnected(self, reason)

    # TLS

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Upgrade the new connection to TLS; frames are read only once that is done."""
        self.handshaking = True
        self.early = bytearray()
        self.handshake = asyncio.get_running_loop().create_task(self._handshake(context))

    async def _handshake(self, context: ssl.SSLContext) -> None:
        raw = self.transport
        assert raw is not None  # noqa: S101  narrows: set in connection_made
        loop = asyncio.get_running_loop()
        upgrade = loop.create_task(
            loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.hub.config.tls_handshake_timeout,
            )
        )
        # One step of start_tls() pauses reading, swaps the transport's protocol for the
        # TLS layer and schedules that layer's connection_made and the resume: the early
        # bytes are fed after those, so ahead of anything read from now on.
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            upgrade.cancel()
            raise
        early, self.early = self.early, None
        layer = raw.get_protocol()
        if early and layer is not self:  # still self: start_tls failed at once, said below
            loop.call_soon(_feed, layer, bytes(early))
        try:
            tls = await upgrade
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            self.handshaking = False
            raw.abort()
            self._report(self.leave_reason or tls_failure(exc))
            return
        self.handshaking = False
        if tls is None or self.leave_reason is not None:
            raw.abort()
            self._report(self.leave_reason or "dropped")
            return
        self.transport = tls
        self.opened = self.last_heard = time.monotonic()  # the hello timer starts now
        # asyncio may have passed us the first frames already, before start_tls() returned.
        self._process()

    # timers (called by the hub's sweep, not a timer per session)

    def check_timers(self, now: float) -> None:
        config = self.hub.config
        if self.handshaking:
            return  # TLS's own handshake timeout applies
        if not self.greeted and now - self.opened > config.handshake_timeout:
            self.send_error(ProtocolError(ErrorCode.HANDSHAKE_TIMEOUT, "no hello in time"))
            self.close("handshake_timeout")
            return
        if self.resume is not None:  # paused by us: its silence is our doing
            self.last_heard = now
        elif self.ping_sent is not None and self.last_heard < self.ping_sent:
            if now - self.ping_sent > config.ping_timeout:
                self.abort("ping_timeout")  # a dead peer never drains a close()
                return
        elif now - max(self.last_heard, self.ping_sent or 0.0) > config.ping_interval:
            self.ping_sent = now
            self.send_frame(Ping())
        if self.bytes_queued > config.soft_queue_bytes:
            if self.over_soft_since is None:
                self.over_soft_since = now
            elif now - self.over_soft_since > config.soft_queue_seconds:
                self.abort("slow_consumer")
        else:
            self.over_soft_since = None

    # sending

    def send(self, data: bytes) -> None:
        """Queue bytes for this session alone; the hub writes them this loop iteration.

        The room's broadcasts wait in the hub's outbox; the part of it this member
        has not taken yet goes first, so a reply never overtakes a message that
        was broadcast before it.
        """
        if self.leave_reason is not None:
            return
        if not self.pending:
            self.hub.mark_dirty(self)
        self._take_outbox()
        self.pending.append(data)
        self.pending_bytes += len(data)

    def _take_outbox(self) -> None:
        outbox = self.hub.outbox
        if self.name is not None and self.outbox_pos < len(outbox):
            for data in outbox[self.outbox_pos :]:
                self.pending.append(data)
                self.pending_bytes += len(data)
            self.outbox_pos = len(outbox)

    def send_frame(self, frame: Frame) -> None:
        self.send(encode(frame))

    def send_error(self, exc: ProtocolError) -> None:
        """Tell the client what was wrong; too many errors too fast and it is closed."""
        self.send_frame(Error(code=exc.code, message=exc.message))
        if not exc.fatal and self.errors.spend(time.monotonic()):
            self.send_frame(
                Error(code=ErrorCode.TOO_MANY_ERRORS, message="too many errors; closing")
            )
            self.close(ErrorCode.TOO_MANY_ERRORS)

    def flush(self) -> None:
        """Write what is queued for this session: its own frames and its outbox share."""
        self._take_outbox()
        if self.pending:
            self.write(b"".join(self.pending) if len(self.pending) > 1 else self.pending[0])
            self.pending.clear()
            self.pending_bytes = 0

    def write(self, data: bytes) -> None:
        """One write to the transport; past the hard queue limit the client is cut off."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.handshaking:
            return
        transport.write(data)
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
    gate: AddressGate = field(init=False)
    members: dict[str, Session] = field(default_factory=dict)
    seq: int = 0
    messages_relayed: int = 0
    leave_reasons: Counter[str] = field(default_factory=Counter)
    started_at: float = field(default_factory=time.time)
    stopping: bool = False
    _dirty: list[Session] = field(default_factory=list)
    #: This loop iteration's broadcasts, encoded once; every member gets them joined once.
    outbox: list[bytes] = field(default_factory=list)
    _flush_scheduled: bool = False
    _all_gone: asyncio.Event = field(default_factory=asyncio.Event)
    #: Connections are upgraded to TLS with this context, if given.
    tls: ssl.SSLContext | None = None
    access: AccessList = field(init=False)
    password_failures: FailureThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.gate = AddressGate(
            self.config.max_per_address, self.config.max_new_per_minute, self.config.limit_loopback
        )
        self.access = AccessList(
            parse_networks(self.config.allow), parse_networks(self.config.deny)
        )
        self.password_failures = FailureThrottle(self.config.max_password_failures, 60.0)

    # connections

    def admit(self, session: Session) -> None:
        """Take a new connection in, or refuse it before reading a byte."""
        refusal = None
        if not self.access.permits(session.host):
            refusal = Refusal(ErrorCode.ACCESS_DENIED, "your address may not use this server")
        elif self.stopping:
            refusal = Refusal(ErrorCode.SERVER_FULL, "the server is shutting down")
        elif len(self.connections) >= self.config.max_clients:
            refusal = Refusal(
                ErrorCode.SERVER_FULL,
                f"the server is full (at most {self.config.max_clients} connections)",
            )
        else:
            refusal = self.gate.admit(session.host, time.monotonic())
        if refusal is not None:
            session.leave_reason = refusal.code
            assert session.transport is not None  # noqa: S101  narrows: called from connection_made
            if self.tls is None:
                frame = Error(refusal.code, refusal.message, refusal.retry_after_ms)
                session.transport.write(encode(frame))
                session.transport.close()
            else:  # before the handshake, a plain frame would only garble it
                session.transport.abort()
            self.leave_reasons[refusal.code] += 1
            self.observer(Refused(session.address, refusal.code))
            return
        session.admitted = True
        self.connections.add(session)
        if self.tls is not None:
            session.start_tls(self.tls)

    def authorised(self, session: Session, password: str | None) -> bool:
        """Check the room password (in constant time); refuse and close if it fails.

        Neither the password tried nor the right one ever reaches an error or the log.
        """
        expected = self.config.password
        if expected is None:
            return True
        now = time.monotonic()
        wait = self.password_failures.blocked(session.host, now)
        if wait is not None:
            session.send_frame(
                Error(
                    ErrorCode.THROTTLED,
                    f"too many wrong passwords from your address; try again in {wait:.0f} s",
                    max(1, int(wait * 1000)),
                )
            )
            code = ErrorCode.THROTTLED
        elif password is None:
            session.send_frame(Error(ErrorCode.PASSWORD_REQUIRED, "this server needs a password"))
            code = ErrorCode.PASSWORD_REQUIRED
        elif hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8")):
            return True
        else:
            self.password_failures.fail(session.host, now)
            session.send_frame(Error(ErrorCode.WRONG_PASSWORD, "wrong password"))
            code = ErrorCode.WRONG_PASSWORD
        session.close("refused")
        self.leave_reasons[code] += 1
        self.observer(Refused(session.address, code))
        return False

    async def sweep(self) -> None:
        """Check every connection's timers, periodically, until cancelled."""
        interval = self.config.sweep_interval
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self.connections):
                session.check_timers(now)
            self.gate.prune(now)
            self.password_failures.prune(now)

    # writes

    def mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Once per loop iteration: the outbox to every member, then private frames.

        The outbox is joined once, and a member with nothing of its own queued
        gets exactly those bytes: no work per message per receiver.
        """
        self._flush_scheduled = False
        if self.outbox:
            blob = b"".join(self.outbox)
            for member in list(self.members.values()):
                if member.pending or member.outbox_pos:
                    member.flush()  # its own frames interleave with the outbox
                elif member.leave_reason is None:
                    member.write(blob)
                member.outbox_pos = 0
            self.outbox.clear()
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    def broadcast(self, frame: Frame) -> None:
        """Queue a frame for every member: encoded once, written at the end of the iteration."""
        self.outbox.append(encode(frame))
        self._schedule_flush()

    def _announced(self) -> bool:
        """Whether a join or leave in a room of this size is told to everyone."""
        return len(self.members) <= self.config.announce_limit

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
            case StatusRequest(password=password):
                session.greeted = True
                if self.authorised(session, password):
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
            check_text(text, self.config.max_text_bytes, self.config.max_text_lines)
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
        if hello.version == PROTOCOL_VERSION and not self.authorised(session, hello.password):
            return  # before the name: who is online is none of a stranger's business
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
            self.observer(Refused(session.address, exc.code))  # logged here, with its code
            return
        session.name = hello.name
        session.greeted = True
        session.last_said = time.monotonic()
        self.members[name_key(hello.name)] = session
        session.outbox_pos = len(self.outbox)  # what was broadcast before it joined is not its
        names = (m.name for m in self.members.values() if m.name is not None)
        session.send_frame(
            Welcome(
                version=PROTOCOL_VERSION,
                name=hello.name,
                users=list(islice(names, WELCOME_NAMES)),
                server=f"chatctl {__version__}",
                seq=self.seq,
                online=len(self.members),
            )
        )
        if self._announced():
            self.broadcast(Joined(seq=self._next_seq(), time=time.time(), name=hello.name))
        self.observer(UserJoined(hello.name, session.address))

    def disconnected(self, session: Session, reason: str) -> None:
        if not session.admitted:
            return  # refused in admit(): already counted and logged
        self.connections.discard(session)
        self.gate.release(session.host)
        if not self.connections:
            self._all_gone.set()
        if session.name is None or self.members.get(name_key(session.name)) is not session:
            if reason not in _UNREMARKABLE:
                self.leave_reasons[reason] += 1
                self.observer(Closed(session.address, reason))
            return
        announced = self._announced()  # counted with the leaver, as its join was
        del self.members[name_key(session.name)]
        self.leave_reasons[reason] += 1
        if announced and not self.stopping:
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

    def __init__(
        self,
        config: ServerConfig,
        observer: Observer = _ignore,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.hub = Hub(config, observer, tls=tls)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Session(self.hub),
            self.config.host,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
        )
        self._sweeper = asyncio.create_task(self.hub.sweep())
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
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


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit as far as the system allows; return it.

    Each client is one file descriptor, and the usual soft limit (1024) would
    cap the server far below ``--max-clients`` on a system that allows more.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _feed(protocol: Any, data: bytes) -> None:
    """Hand bytes to a TLS layer as if read: asyncio's and uvloop's are buffered protocols
    (duck typed: uvloop's does not derive from asyncio.BufferedProtocol)."""
    view = memoryview(data)
    while view:
        buf = protocol.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        protocol.buffer_updated(n)
        view = view[n:]


def tls_failure(exc: BaseException) -> str:
    """The reason a TLS handshake failed, as a short code for the log and ``leave_reasons``.

    ``not_tls``: the peer spoke something else (a plaintext chatctl client on this
    port); ``tls_handshake_timeout``; ``tls_untrusted``: the client does not trust our
    certificate (a pinning client reading the fingerprint it will ask about);
    ``tls_abandoned``: the client hung up mid-handshake (what a client that does not
    trust the certificate yet does); ``tls_error``: anything else.
    """
    reason = str(getattr(exc, "reason", "") or "").upper()
    if reason in _NOT_TLS:
        return "not_tls"
    if "ALERT_UNKNOWN_CA" in reason or "ALERT_BAD_CERTIFICATE" in reason:
        return "tls_untrusted"
    if isinstance(exc, ConnectionAbortedError) or "taking longer" in str(exc):
        return "tls_handshake_timeout"
    if isinstance(exc, ConnectionResetError | EOFError | ssl.SSLEOFError):
        return "tls_abandoned"
    return "tls_error"


#: OpenSSL's reasons for a first record that is not TLS at all.
_NOT_TLS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNSUPPORTED_PROTOCOL",
        "WRONG_SSL_VERSION",
    }
)
