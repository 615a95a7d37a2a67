"""Client core: connect, handshake, send, and the receive loop.

asyncio only, no terminal code, so tests, bots and the terminal UI all drive the
same object. Every frame it yields has passed through ``clean_frame``: a client
trusts a server no more than a server trusts its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chatctl.protocol import (
    PROTOCOL_VERSION,
    Bye,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Say,
    ServerFrame,
    Shutdown,
    StatusReply,
    StatusRequest,
    Welcome,
    check_name,
    check_text,
    clean_frame,
    clean_text,
    encode,
    name_key,
    server_frame_decoder,
)
from chatctl.tls import (
    HANDSHAKE_TIMEOUT,
    UNKNOWN_ISSUER_CODES,
    KnownServers,
    TlsSetupError,
    fingerprint,
    pinning_context,
    verifying_context,
)

#: Seconds to connect and to get the answer to a handshake or a status request.
DEFAULT_TIMEOUT = 10.0
#: Seconds of silence from the server before the client pings it, then seconds to wait
#: for anything at all before it gives the connection up (the server's own rule for clients).
DEFAULT_PING_INTERVAL = 60.0
DEFAULT_PING_TIMEOUT = 30.0
_READ_SIZE = 64 * 1024


class ClientError(Exception):
    """Base of what the client core raises; the message is one line for a human.

    ``reason`` is the same without the address, for a UI that already shows it.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class Unreachable(ClientError):
    """No connection could be made, or nothing answered in time."""


class Refused(ClientError):
    """The server answered the handshake with an error; ``code`` is the protocol code.

    ``retry_after`` (seconds) is the server's hint, with ``throttled``, of when to try again.
    """

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class ConnectionLost(ClientError):
    """The connection ended without a shutdown notice and without us leaving."""


class WrongTransport(ClientError):
    """TLS on one side only: the message says which flag to change."""


class Untrusted(ClientError):
    """The server's certificate is not trusted (and was not pinned), or TLS failed."""


class UnknownServer(Untrusted):
    """No CA vouches for the server's certificate and it is not pinned yet.

    A UI may show ``fingerprint`` to the user, and on their word add it to the
    known servers (``TlsOptions.known``) and connect again.
    """

    def __init__(self, where: str, fingerprint: str) -> None:
        super().__init__(
            f"{where} presents a certificate no CA vouches for, fingerprint {fingerprint}; "
            "if that is the fingerprint `chatctl serve --tls` logged, run again with "
            f"--fingerprint {fingerprint}"
        )
        self.where = where
        self.fingerprint = fingerprint


class FingerprintChanged(ClientError):
    """A pinned server presents another certificate: refused, loudly."""


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


#: Refusals that trying again cannot change: a reconnecting client stops on these.
_FINAL_REFUSALS = frozenset(
    {
        ErrorCode.INVALID_NAME,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.PASSWORD_REQUIRED,
        ErrorCode.WRONG_PASSWORD,
        ErrorCode.ACCESS_DENIED,
    }
)
#: Errors that answer a ``say`` (it was not relayed); others do not concern a message.
_SAY_REFUSALS = frozenset(
    {ErrorCode.EMPTY_MESSAGE, ErrorCode.MESSAGE_TOO_LONG, ErrorCode.NOT_JOINED}
)


def worth_retrying(exc: ClientError) -> bool:
    """Whether a failed join may succeed later (the server is back, the old session gone).

    Unreachable servers, lost connections and refusals such as ``name_taken`` (our
    old session may not have timed out yet) are worth another try; an invalid name,
    another protocol version or something that is not a chatctl server are not.
    """
    if isinstance(exc, Unreachable | ConnectionLost):
        return True
    if isinstance(exc, Refused):
        return exc.code not in _FINAL_REFUSALS
    return False


def backoff(first: float = 1.0, factor: float = 2.0, cap: float = 30.0) -> Iterator[float]:
    """Seconds to wait before each reconnection attempt: 1, 2, 4, 8, 16, 30, 30, ..."""
    delay = first
    while True:
        yield min(delay, cap)
        delay = min(delay * factor, cap)


class Unconfirmed:
    """Messages sent on one connection but not yet seen coming back, oldest first.

    The server relays every accepted message to its sender too, in the order sent,
    and answers a refused one with an error instead (docs/protocol.md, "Ordering"):
    an echo confirms the oldest line, a refusal removes it. What is left when the
    connection ends was, as far as the client can tell, never relayed.
    """

    def __init__(self) -> None:
        self._lines: deque[tuple[str, str]] = deque()  # (as sent, as the server echoes it)

    def sent(self, text: str) -> None:
        self._lines.append((text, clean_text(text)))

    def echoed(self, text: str) -> None:
        """One of our messages came back with ``text`` (as relayed, i.e. cleaned).

        It confirms the oldest line with that text, and any older ones (refused, or
        the server would have relayed them first); if no line matches exactly (a
        server that cleans differently), it confirms the oldest line.
        """
        for index, (_, echo) in enumerate(self._lines):
            if echo == text:
                for _ in range(index + 1):
                    self._lines.popleft()
                return
        if self._lines:
            self._lines.popleft()

    def refused(self) -> str | None:
        """The server refused our oldest pending message: forget it and return it."""
        return self._lines.popleft()[0] if self._lines else None

    def take(self) -> list[str]:
        """Every pending line, as sent, oldest first; the list is then empty."""
        lines = [sent for sent, _ in self._lines]
        self._lines.clear()
        return lines

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[str]:
        return (sent for sent, _ in self._lines)


class _Connection:
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
    ) -> _Connection:
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


class ChatClient:
    """A joined participant. ``async for frame in client`` is the receive loop.

    The receive loop answers the server's pings, pings a server that has been
    silent for ``ping_interval`` seconds and gives the connection up (ConnectionLost)
    when nothing at all arrives within ``ping_timeout`` more: TCP alone takes hours
    to notice a half-open connection. It also keeps ``unconfirmed``: what ``say``
    sent that has not come back yet.
    """

    def __init__(
        self,
        conn: _Connection,
        welcome: Welcome,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        self._conn = conn
        self.welcome = welcome
        self.name = welcome.name
        self.where = conn.where
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.unconfirmed = Unconfirmed()
        self.shutdown: Shutdown | None = None
        self._leaving = False
        self._ended = False
        self._activity = asyncio.Event()  # set on every frame and when the loop ends

    @classmethod
    async def join(
        cls,
        host: str,
        port: int,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        tls: TlsOptions | None = None,
        password: str | None = None,
    ) -> ChatClient:
        """Connect and handshake; raises Unreachable, Refused, ConnectionLost, or with
        TLS Untrusted (UnknownServer), FingerprintChanged or WrongTransport."""
        try:
            check_name(name)  # say so before touching the network
        except ProtocolError as exc:
            raise Refused(exc.code, exc.message) from None
        conn = await _Connection.open(host, port, timeout, tls)
        try:
            conn.write(encode(Hello(version=PROTOCOL_VERSION, name=name, password=password)))
            reply = await conn.read_reply(timeout)
        except BaseException:
            await conn.close()
            raise
        if isinstance(reply, Welcome):
            return cls(conn, reply, ping_interval, ping_timeout)
        await conn.close()
        if isinstance(reply, Error):
            retry_after = None if reply.retry_after_ms is None else reply.retry_after_ms / 1000
            raise Refused(reply.code, reply.message, retry_after)
        raise ClientError(
            f"{conn.where} answered the handshake with '{reply.__struct_config__.tag}'"
        )

    @property
    def leaving(self) -> bool:
        """True once ``leave`` was called."""
        return self._leaving

    @property
    def ended(self) -> bool:
        """True once the receive loop has ended (either way)."""
        return self._ended

    async def say(self, text: str) -> None:
        """Send a message; raises ProtocolError if it is empty or too long to send.

        The text stays in ``unconfirmed`` until it comes back from the server.
        """
        check_text(text)
        self._conn.write(encode(Say(text=text)))
        self.unconfirmed.sent(text)
        with contextlib.suppress(ConnectionError):  # the receive loop reports it
            await self._conn.writer.drain()

    async def leave(self) -> None:
        """Say goodbye; the receive loop then ends when the server closes."""
        if not self._leaving:
            self._leaving = True
            self._conn.write(encode(Bye()))
            with contextlib.suppress(ConnectionError):
                await self._conn.writer.drain()

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

    def __aiter__(self) -> AsyncIterator[ServerFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[ServerFrame]:
        """Yield frames until the connection ends; answers pings by itself.

        Ends quietly after we left or the server announced its shutdown;
        otherwise an end of stream, or a server gone silent, raises ConnectionLost.
        """
        try:
            while True:
                frame = await self._next_frame()
                self._activity.set()
                if frame is None:
                    if self._leaving or self.shutdown is not None:
                        return
                    raise ConnectionLost(f"connection to {self.where} lost")
                match frame:
                    case Ping():
                        self._conn.write(encode(Pong()))
                        continue
                    case Pong():
                        continue
                    case Message(name=name, text=text) if name_key(name) == name_key(self.name):
                        self.unconfirmed.echoed(text)
                    case Error(code=code) if code in _SAY_REFUSALS:
                        self.unconfirmed.refused()
                    case Shutdown():
                        self.shutdown = frame
                yield frame
        finally:
            self._ended = True
            self._activity.set()

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


async def fetch_status(
    host: str,
    port: int,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> StatusReply:
    """Ask a server for its status without joining."""
    conn = await _Connection.open(host, port, timeout, tls)
    try:
        conn.write(encode(StatusRequest(password=password)))
        reply = await conn.read_reply(timeout)
    finally:
        await conn.close()
    if isinstance(reply, StatusReply):
        return reply
    if isinstance(reply, Error):
        raise Refused(reply.code, reply.message)
    raise ClientError(f"{conn.where} answered the status request with something else")


# --------------------------------------------------------------------------- connecting

#: OpenSSL's reasons for a first record that is not TLS: the server speaks plain chatctl.
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG"}
)


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
        if exc.reason in _NOT_TLS:
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
