"""One connection to a server: dial (plain or TLS, with pinning), read frames, write bytes.

Every frame read has passed through ``clean_frame``: a client trusts a server no
more than a server trusts its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from chatctl.client.errors import (
    ClientError,
    ConnectionLost,
    FingerprintChanged,
    UnknownServer,
    Unreachable,
    Untrusted,
    WrongTransport,
)
from chatctl.protocol import (
    ErrorCode,
    FrameDecoder,
    Ping,
    Pong,
    ProtocolError,
    ServerFrame,
    clean_frame,
    encode,
    server_frame_decoder,
)
from chatctl.tls import (
    HANDSHAKE_TIMEOUT,
    NOT_TLS_REASONS,
    UNKNOWN_ISSUER_CODES,
    KnownServers,
    TlsSetupError,
    fingerprint,
    pinning_context,
    verifying_context,
)

_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class TlsOptions:
    """How a client connects with TLS (``--tls``, ``--tls-ca``, ``--fingerprint``)."""

    #: Verify against this CA file only, instead of the system's CAs (no pinning then).
    cafile: Path | None = None
    #: A fingerprint the user vouches for (normalised by ``tls.parse_fingerprint``).
    fingerprint: str | None = None
    #: Where pins are kept; None: the known_servers file in the config folder.
    known: KnownServers | None = None
    handshake_timeout: float = HANDSHAKE_TIMEOUT

    @property
    def known_servers(self) -> KnownServers:
        return self.known or KnownServers()


def _why(exc: OSError) -> str:
    """A short reason for a failed connect, without asyncio's wording."""
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if exc.errno == errno.ECONNREFUSED or "refused" in str(exc).lower():
        return "connection refused"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return "connection failed"


class Connection:
    """A socket plus a decoder: reads whole frames, writes frames."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
        tls: bool = False,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self.tls = tls
        self.received = 0
        self.decoder: FrameDecoder[ServerFrame] = server_frame_decoder()

    @classmethod
    async def open(
        cls, host: str, port: int, timeout: float, tls: TlsOptions | None = None
    ) -> Connection:
        where = f"{host}:{port}"
        if tls is None:
            reader, writer = await _dial(host, port, where, timeout)
        else:
            try:
                reader, writer = await _open_tls(host, port, where, timeout, tls)
            except TlsSetupError as exc:
                raise Untrusted(str(exc)) from None
        return cls(reader, writer, where, tls is not None)

    def _may_need_tls(self) -> WrongTransport | None:
        """A plaintext connection that ended before a single line: a TLS server, likely."""
        if self.tls or self.received:
            return None
        why = "the server closed the connection without a word: it may require TLS: try --tls"
        return WrongTransport(f"{self.where}: {why}", why)

    async def read_frame(self) -> ServerFrame | None:
        """The next frame, cleaned; ``None`` at end of stream."""
        while True:
            try:
                frame = self.decoder.next_frame()
            except ProtocolError as exc:
                if exc.code == ErrorCode.UNKNOWN_TYPE:
                    continue  # a newer server's frame: skip it, as the server skips ours
                if exc.code == ErrorCode.UNEXPECTED_TLS and not self.tls:
                    why = "the server answered in TLS: try --tls"
                    raise WrongTransport(f"{self.where}: {why}", why) from None
                raise ClientError(f"{self.where} sent something that is not chatctl") from None
            if frame is not None:
                return clean_frame(frame)
            try:
                data = await self.reader.read(_READ_SIZE)
            except OSError:  # reset, timed out, unreachable: all an end of stream here
                data = b""
            if not data:
                return None
            self.received += len(data)
            self.decoder.feed(data)

    async def read_reply(self, timeout: float) -> ServerFrame:
        """The answer to a request: a frame other than ping/pong, within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = await self.read_frame()
                    if frame is None:
                        wrong = self._may_need_tls()
                        if wrong is not None:
                            raise wrong
                        why = "the server closed the connection"
                        raise ConnectionLost(f"{self.where} closed the connection", why)
                    if isinstance(frame, Ping):
                        self.write(encode(Pong()))
                    elif not isinstance(frame, Pong):
                        return frame
        except TimeoutError:
            raise Unreachable(
                f"{self.where} did not answer within {timeout:g} s (is it a chatctl server?)",
                f"no answer within {timeout:g} s",
            ) from None

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


async def _dial(
    host: str,
    port: int,
    where: str,
    timeout: float,
    context: ssl.SSLContext | None = None,
    tls_timeout: float = HANDSHAKE_TIMEOUT,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection (a TLS one with ``context``); each failure as one ClientError.

    ``ssl.SSLCertVerificationError`` is left to the caller, which may pin instead.
    """
    try:
        if context is None:
            opening = asyncio.open_connection(host, port)
        else:
            opening = asyncio.open_connection(
                host, port, ssl=context, server_hostname=host, ssl_handshake_timeout=tls_timeout
            )
        return await asyncio.wait_for(opening, timeout)
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
        raise Unreachable(f"cannot reach {where}: {why}", why) from None
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        if exc.reason in NOT_TLS_REASONS:
            why = "the server does not use TLS: drop --tls"
            raise WrongTransport(f"{where}: {why}", why) from None
        raise Untrusted(f"TLS handshake with {where} failed ({exc.reason or 'error'})") from None
    except ConnectionAbortedError as exc:
        if context is not None and "handshake" in str(exc):
            why = f"no TLS handshake within {tls_timeout:g} s"
            raise Unreachable(f"cannot reach {where}: {why}", why) from None
        raise Unreachable(f"cannot reach {where}: {_why(exc)}", _why(exc)) from None
    except (ConnectionResetError, EOFError) as exc:
        if context is None:
            raise Unreachable(
                f"cannot reach {where}: connection reset", "connection reset"
            ) from None
        del exc
        # A TLS chatctl server refuses before the handshake (full, throttled, address
        # denied) with a bare close: a plain error frame would garble the handshake.
        why = (
            "the server closed the connection during the TLS handshake: it may be full, "
            "limiting or refusing your address, or not use TLS"
        )
        raise ClientError(f"{where}: {why}", why) from None
    except OSError as exc:
        why = _why(exc)
        hint = " (is `chatctl serve` running there?)" if why == "connection refused" else ""
        raise Unreachable(f"cannot reach {where}: {why}{hint}", why) from None


def _peer_fingerprint(writer: asyncio.StreamWriter) -> str:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise Untrusted("the server sent no certificate")
    return fingerprint(der)


async def _close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _open_tls(
    host: str, port: int, where: str, timeout: float, tls: TlsOptions
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Verify the server against the CAs, or else against its pin (trust on first use).

    A pinned server (or one given by ``--fingerprint``) must present exactly that
    certificate. An unpinned one that no CA vouches for raises UnknownServer with
    its fingerprint, for the UI to ask about; with ``--fingerprint`` that matches,
    the pin is stored.
    """
    known = tls.known_servers
    pin = known.lookup(where)
    if pin is None and tls.fingerprint is None:
        try:
            return await _dial(
                host, port, where, timeout, verifying_context(tls.cafile), tls.handshake_timeout
            )
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code not in UNKNOWN_ISSUER_CODES or tls.cafile is not None:
                why = exc.verify_message or exc.reason or "verification failed"
                raise Untrusted(f"the certificate of {where} is not valid: {why}") from None
        # No CA vouches for it: fetch its fingerprint, to show it.
        _, writer = await _dial(
            host, port, where, timeout, pinning_context(), tls.handshake_timeout
        )
        try:
            raise UnknownServer(where, _peer_fingerprint(writer))
        finally:
            await _close_quietly(writer)
    reader, writer = await _dial(
        host, port, where, timeout, pinning_context(), tls.handshake_timeout
    )
    got = _peer_fingerprint(writer)
    if pin is not None and got != pin.fingerprint:
        await _close_quietly(writer)
        raise FingerprintChanged(
            f"THE CERTIFICATE OF {where} HAS CHANGED: it is {got}, but line {pin.line} of "
            f"{pin.path} pins {pin.fingerprint}. Someone may be impersonating the server, or "
            f"it has a new certificate: ask its operator, and only if the new fingerprint is "
            f"theirs, delete line {pin.line} of {pin.path} and connect again."
        )
    if tls.fingerprint is not None and got != tls.fingerprint:
        await _close_quietly(writer)
        raise Untrusted(
            f"{where} presents the certificate {got}, not the --fingerprint given: refused"
        )
    if pin is None:
        try:
            known.add(where, got)
        except TlsSetupError:
            await _close_quietly(writer)
            raise
    return reader, writer
