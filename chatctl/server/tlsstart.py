"""TLS start-up for one session: ``start_tls`` after admission, and the bytes read before it.

The server does not pass ``ssl=`` to ``create_server``: a failed handshake would
then vanish without a trace (docs/design.md, "TLS"). Each session is admitted as
plain TCP and upgraded here, and a failure becomes one short reason for the log.

uvloop reads right after ``connection_made``, before the upgrade task runs (the
stdlib loop happens not to), so a quick ClientHello may reach the session first:
those bytes are the TLS layer's, and are handed to it once it has the transport.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from chatctl.protocol import LeaveReason
from chatctl.server.config import ServerConfig
from chatctl.tls import NOT_TLS_REASONS

if TYPE_CHECKING:
    from chatctl.server.session import Session


class TlsUpgrade:
    """Runs the handshake of one session and tells it how it ended."""

    def __init__(
        self,
        session: Session,
        raw: asyncio.Transport,
        context: ssl.SSLContext,
        config: ServerConfig,
    ) -> None:
        self._session = session
        self._raw = raw
        #: Read before start_tls() took the transport over: the TLS layer's bytes.
        self._early: bytearray | None = bytearray()
        #: Decrypted bytes that came with the handshake's end, before start_tls() returned.
        self._leftover = bytearray()
        self._task = asyncio.get_running_loop().create_task(
            self._run(context, config.tls_handshake_timeout)
        )

    def early_bytes(self, data: bytes) -> None:
        if self._early is not None:
            self._early += data
        else:
            self._leftover += data

    async def _run(self, context: ssl.SSLContext, timeout: float) -> None:
        raw, session = self._raw, self._session
        loop = asyncio.get_running_loop()
        upgrade = loop.create_task(
            loop.start_tls(raw, session, context, server_side=True, ssl_handshake_timeout=timeout)
        )
        # One step of start_tls() pauses reading, swaps the transport's protocol for the
        # TLS layer and schedules that layer's connection_made and the resume: the early
        # bytes are fed after those, so ahead of anything read from now on.
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            upgrade.cancel()
            raise
        early, self._early = self._early, None
        layer = raw.get_protocol()
        if early and layer is not session:  # still the session: start_tls failed at once
            loop.call_soon(_feed, layer, bytes(early))
        try:
            tls = await upgrade
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            raw.abort()
            session.tls_failed(tls_failure(exc))
            return
        if tls is None:
            raw.abort()
            session.tls_failed(LeaveReason.DROPPED)
            return
        session.tls_ready(tls, bytes(self._leftover))


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


def tls_failure(exc: BaseException) -> LeaveReason:
    """The reason a TLS handshake failed, as a short code for the log and ``leave_reasons``.

    ``not_tls``: the peer spoke something else (a plaintext chatctl client on this
    port); ``tls_handshake_timeout``; ``tls_untrusted``: the client does not trust our
    certificate (a pinning client reading the fingerprint it will ask about);
    ``tls_abandoned``: the client hung up mid-handshake (what a client that does not
    trust the certificate yet does); ``tls_error``: anything else.
    """
    reason = str(getattr(exc, "reason", "") or "").upper()
    if reason in NOT_TLS_REASONS:
        return LeaveReason.NOT_TLS
    if "ALERT_UNKNOWN_CA" in reason or "ALERT_BAD_CERTIFICATE" in reason:
        return LeaveReason.TLS_UNTRUSTED
    if isinstance(exc, ConnectionAbortedError) or "taking longer" in str(exc):
        return LeaveReason.TLS_HANDSHAKE_TIMEOUT
    if isinstance(exc, ConnectionResetError | EOFError | ssl.SSLEOFError):
        return LeaveReason.TLS_ABANDONED
    return LeaveReason.TLS_ERROR
