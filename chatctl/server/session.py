"""One connection as an asyncio protocol: read, pace, queue writes, close or abort.

Nothing about chat lives here: frames go to the host (the hub) as they are
decoded, and the host hands back bytes to send. Reading is paused, never dropped,
when the client outruns its pacing: the frame that found no token is held and
handled when one is due.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any, Protocol, cast

import msgspec

from chatctl.limits import ErrorBudget, Refusal, TokenBucket
from chatctl.protocol import (
    BLANK,
    Blank,
    Bye,
    ClientFrame,
    Error,
    ErrorCode,
    LeaveReason,
    Ping,
    Pong,
    ProtocolError,
    Reason,
    clean_line,
    client_frame_decoder,
    encode,
)
from chatctl.server.config import ServerConfig
from chatctl.server.tlsstart import TlsUpgrade

if TYPE_CHECKING:
    from chatctl.server.dialect import Dialect

#: An error names the room of the frame it answers, which may be no room: this much of it.
ECHOED_ROOM = 40


class Decoder(Protocol):
    """Bytes in, frames out (``protocol.FrameDecoder``; the IRC door's decoder gives
    lines, which its session's ``handle`` reads: hence ``Any``)."""

    def feed(self, data: bytes) -> None: ...
    def next_line(self) -> Any: ...


class SessionHost(Protocol):
    """What a session needs of the hub: admission, frames, flushing, and its end."""

    config: ServerConfig
    tls: ssl.SSLContext | None

    def admit(self, session: Session) -> Refusal | None: ...
    def sending(self, session: Session) -> None: ...
    def received(self, session: Session, frame: ClientFrame) -> None: ...
    def queued(self, session: Session) -> None: ...
    def writing(self) -> None: ...
    def ended(self, session: Session, reason: Reason) -> None: ...


class Session(asyncio.Protocol):
    """One connection: decodes what it receives, buffers what it must send.

    It speaks the chatctl protocol; the IRC door's session overrides what is about the
    wire: ``new_decoder`` (bytes in), ``handle`` (frames in), ``render`` (frames out),
    ``dialect`` (room broadcasts), and how errors and refusals are said.
    """

    #: How room broadcasts are encoded for it (None: by its protocol version).
    dialect: Dialect | None = None

    def __init__(self, host: SessionHost) -> None:
        config = host.config
        now = time.monotonic()
        self._host = host
        self._config = config
        self._max_queue = config.max_queue_bytes
        self.transport: asyncio.Transport | None = None
        self.host = "?"
        self.address = "?"
        self.connected_at = time.time()
        self._decoder = self.new_decoder(config)
        #: Frames for this session alone, and room broadcasts spliced in among them.
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._opened = now
        self._last_heard = now
        self._ping_sent: float | None = None
        self._over_soft_since: float | None = None
        self._leave_reason: Reason | None = None
        self._admitted = False
        #: Sent a hello or a status request: not a silent socket holding a slot.
        self._greeted = False
        self._bucket = TokenBucket(config.burst, config.rate, now)
        self._paced = config.rate > 0
        self._errors = ErrorBudget(config.max_errors, config.error_window)
        self._held: ClientFrame | Blank | None = None
        self._resume: asyncio.TimerHandle | None = None
        #: TLS start-up under way: nothing may be written to the raw transport.
        self._tls: TlsUpgrade | None = None
        self._reported = False

    # the narrow API the hub uses

    @property
    def closing(self) -> bool:
        """True once the session is leaving: it sends and handles nothing more."""
        return self._leave_reason is not None

    @property
    def handshaking(self) -> bool:
        """The TLS start-up is under way (it ends by calling tls_ready or tls_failed)."""
        return self._tls is not None

    @property
    def last_heard(self) -> float:
        """When (monotonic) the last byte came from the client."""
        return self._last_heard

    @property
    def bytes_queued(self) -> int:
        buffered = self.transport.get_write_buffer_size() if self.transport else 0
        return self._pending_bytes + buffered

    def greeted(self) -> None:
        """It said hello or asked for status: the handshake timer stops."""
        self._greeted = True

    def queue(self, data: bytes) -> None:
        """Bytes for this session, written with everything else at the end of the iteration."""
        if self._leave_reason is not None:
            return
        if not self._pending:
            self._host.queued(self)
        self._pending.append(data)
        self._pending_bytes += len(data)

    def new_decoder(self, config: ServerConfig) -> Decoder:
        """What reads this connection's bytes (called once, by ``__init__``)."""
        return client_frame_decoder(config.max_frame_bytes)

    def render(self, frame: msgspec.Struct) -> bytes:
        """A server frame as this connection reads it."""
        return encode(frame)

    def tell(self, frame: msgspec.Struct) -> None:
        """One frame for this session (before it joined, or of its own: pings, errors)."""
        self.queue(self.render(frame))

    def handle(self, frame: Any) -> None:
        """A frame the client sent, due now (paced): the hub's to handle."""
        self._host.received(self, frame)

    def send_error(
        self, exc: ProtocolError, id: str | None = None, room: str | None = None
    ) -> None:
        """Tell the client what was wrong; too many errors too fast and it is closed."""
        self._host.sending(self)  # after the room broadcasts queued before it
        if room is not None:  # perhaps not a room at all (invalid_room): made inert
            room = clean_line(room[:ECHOED_ROOM])
        self.tell(Error(exc.code, exc.message, id=id, room=room))
        if not exc.fatal:
            self.spend_error()

    def spend_error(self) -> None:
        """One error against the budget: too many too fast and the connection is closed."""
        if self._errors.spend(time.monotonic()):
            self.tell(Error(ErrorCode.TOO_MANY_ERRORS, "too many errors; closing"))
            self.close(ErrorCode.TOO_MANY_ERRORS)

    def refuse(self, refusal: Refusal) -> None:
        """Say why the handshake (hello or status) is refused, then close."""
        error = Error(
            refusal.code, refusal.message, refusal.retry_after_ms, server_id=refusal.server_id
        )
        self.tell(error)
        self.close(LeaveReason.REFUSED)

    def dismiss(self, error: ProtocolError) -> None:
        """Say why the server ends this joined connection, then close (ended with its code)."""
        self._host.sending(self)  # after the room broadcasts queued before it
        self.tell(Error(error.code, error.message))
        self.close(error.code)

    def deliver(self, data: bytes) -> None:
        """Bytes shared by a room: written at once, or after what is already queued.

        Called once per member per loop iteration, so ``write`` is inlined here: at a gentle
        rate each message is one call per member, and a Python call is a tenth of it.
        """
        if self._pending:
            self.queue(data)
            return
        transport = self.transport
        if not data or transport is None or self._tls is not None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._max_queue:
            self.abort(LeaveReason.SLOW_CONSUMER)

    def flush(self) -> None:
        """Write what is queued, in one write."""
        if self._pending:
            pending = self._pending
            self.write(b"".join(pending) if len(pending) > 1 else pending[0])
            pending.clear()
            self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        """One write to the transport; past the hard queue limit the client is cut off."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._tls is not None:
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._max_queue:
            self.abort(LeaveReason.SLOW_CONSUMER)

    def close(self, reason: Reason) -> None:
        """Leave after what is queued has been written (flush, then close)."""
        if self._leave_reason is None:
            self._leave_reason = reason
        if self._pending:
            self._host.writing()  # before the end of the iteration: history first
            self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: Reason) -> None:
        """Drop at once: ``close()`` would wait for a reader that may never read."""
        if self._leave_reason is None:
            self._leave_reason = reason
        self._pending.clear()
        self._pending_bytes = 0
        if self.transport is not None:
            self.transport.abort()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.host = str(peer[0])
            port = peer[1]
            self.address = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        refusal = self._host.admit(self)
        if refusal is not None:
            self._leave_reason = refusal.code
            if self._host.tls is None:
                error = Error(refusal.code, refusal.message, refusal.retry_after_ms)
                self.transport.write(self.render(error))
                self.transport.close()
            else:  # before the handshake, a plain frame would only garble it
                self.transport.abort()
            return
        self._admitted = True
        if self._host.tls is not None:
            self._tls = TlsUpgrade(self, self.transport, self._host.tls, self._config)

    def data_received(self, data: bytes) -> None:
        self._last_heard = now = time.monotonic()
        tls = self._tls
        if tls is not None:
            tls.early_bytes(data)  # the TLS layer's, or with the handshake's end: kept
            return
        self._decoder.feed(data)
        self._process(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls is not None:
            return  # the TLS start-up reports the end, with its reason
        self._report(self._leave_reason or LeaveReason.DROPPED)

    # TLS start-up (called by TlsUpgrade)

    def tls_ready(self, transport: asyncio.Transport, leftover: bytes) -> None:
        """The handshake is done: frames are read from the TLS transport from now on."""
        self._tls = None
        if self._leave_reason is not None:
            transport.abort()
            self._report(self._leave_reason)
            return
        self.transport = transport
        self._opened = self._last_heard = time.monotonic()  # the hello timer starts now
        if leftover:
            self._decoder.feed(leftover)
        self._process(self._opened)

    def tls_failed(self, reason: Reason) -> None:
        self._tls = None
        self._report(self._leave_reason or reason)

    # reading and pacing

    def _process(self, now: float) -> None:
        """Handle buffered frames until none is left, pacing says wait, or we leave.

        ``now`` is when the bytes were read (one clock read for all the frames in them).
        """
        while self._leave_reason is None:
            frame, self._held = self._held, None
            if frame is None:
                try:
                    frame = self._decoder.next_line()
                except ProtocolError as exc:
                    self.send_error(exc)
                    if exc.fatal:
                        self.close(exc.code)
                    continue
                if frame is None:
                    return
            # Pacing off (--rate 0) costs nothing per frame, but for the pong it must see.
            paced = self._paced or frame.__class__ is Pong
            cost = self.cost(frame) if paced else 0
            if cost:
                wait = self._bucket.delay(now, cost)
                if wait > 0:
                    self._pause(frame, wait)
                    return
            if frame is not BLANK:
                self.handle(frame)

    def cost(self, frame: ClientFrame | Blank) -> int:
        """Pacing tokens ``frame`` takes: one for everything, blank lines included, but
        none for ``bye`` and the one ``pong`` that answers our ping: a flood of anything
        is a flood."""
        if isinstance(frame, Bye):
            return 0
        if isinstance(frame, Pong) and self._ping_sent is not None:
            self._ping_sent = None
            return 0
        return 1

    def _pause(self, frame: ClientFrame | Blank, wait: float) -> None:
        self._held = frame
        if self.transport is not None and self._resume is None:
            self.transport.pause_reading()
            self._resume = asyncio.get_running_loop().call_later(wait, self._resumed)

    def _resumed(self) -> None:
        self._resume = None
        self._process(time.monotonic())
        if self._resume is None and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _report(self, reason: Reason) -> None:
        if self._reported:
            return
        self._reported = True
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._admitted:  # a refusal at accept was counted and logged by admit()
            self._host.ended(self, reason)

    # timers (called by the hub's sweep, not a timer per session)

    def check_timers(self, now: float) -> None:
        config = self._config
        if self._tls is not None:
            return  # TLS's own handshake timeout applies
        if not self._greeted and now - self._opened > config.handshake_timeout:
            self.send_error(ProtocolError(ErrorCode.HANDSHAKE_TIMEOUT, "no hello in time"))
            self.close(LeaveReason.HANDSHAKE_TIMEOUT)
            return
        if self._resume is not None:  # paused by us: its silence is our doing
            self._last_heard = now
        elif self._ping_sent is not None and self._last_heard < self._ping_sent:
            if now - self._ping_sent > config.ping_timeout:
                self.abort(LeaveReason.PING_TIMEOUT)  # a dead peer never drains a close()
                return
        elif now - max(self._last_heard, self._ping_sent or 0.0) > config.ping_interval:
            self._ping_sent = now
            self._host.sending(self)
            self.tell(Ping())
        if self.bytes_queued > config.soft_queue_bytes:
            if self._over_soft_since is None:
                self._over_soft_since = now
            elif now - self._over_soft_since > config.soft_queue_seconds:
                self.abort(LeaveReason.SLOW_CONSUMER)
        else:
            self._over_soft_since = None
