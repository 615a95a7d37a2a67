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
from collections.abc import AsyncIterator

from chatctl.protocol import (
    PROTOCOL_VERSION,
    Bye,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
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
    encode,
    server_frame_decoder,
)

#: Seconds to connect and to get the answer to a handshake or a status request.
DEFAULT_TIMEOUT = 10.0
_READ_SIZE = 64 * 1024


class ClientError(Exception):
    """Base of what the client core raises; the message is one line for a human."""


class Unreachable(ClientError):
    """No connection could be made, or nothing answered in time."""


class Refused(ClientError):
    """The server answered the handshake with an error; ``code`` is the protocol code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConnectionLost(ClientError):
    """The connection ended without a shutdown notice and without us leaving."""


def _why(exc: OSError) -> str:
    """A short reason for a failed connect, without asyncio's wording."""
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if exc.errno == errno.ECONNREFUSED or "refused" in str(exc).lower():
        return "connection refused (is `chatctl serve` running there?)"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return "connection failed"


class _Connection:
    """A socket plus a decoder: reads whole frames, writes frames."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self.decoder: FrameDecoder[ServerFrame] = server_frame_decoder()

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> _Connection:
        where = f"{host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError:
            raise Unreachable(f"cannot reach {where}: no answer within {timeout:g} s") from None
        except OSError as exc:
            raise Unreachable(f"cannot reach {where}: {_why(exc)}") from None
        return cls(reader, writer, where)

    async def read_frame(self) -> ServerFrame | None:
        """The next frame, cleaned; ``None`` at end of stream."""
        while True:
            try:
                frame = self.decoder.next_frame()
            except ProtocolError as exc:
                if exc.code == ErrorCode.UNKNOWN_TYPE:
                    continue  # a newer server's frame: skip it, as the server skips ours
                raise ClientError(f"{self.where} sent something that is not chatctl") from None
            if frame is not None:
                return clean_frame(frame)
            try:
                data = await self.reader.read(_READ_SIZE)
            except ConnectionError:
                data = b""
            if not data:
                return None
            self.decoder.feed(data)

    async def read_reply(self, timeout: float) -> ServerFrame:
        """The answer to a request: a frame other than ping/pong, within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = await self.read_frame()
                    if frame is None:
                        raise ConnectionLost(f"{self.where} closed the connection")
                    if isinstance(frame, Ping):
                        self.write(encode(Pong()))
                    elif not isinstance(frame, Pong):
                        return frame
        except TimeoutError:
            raise Unreachable(
                f"{self.where} did not answer within {timeout:g} s (is it a chatctl server?)"
            ) from None

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


class ChatClient:
    """A joined participant. ``async for frame in client`` is the receive loop."""

    def __init__(self, conn: _Connection, welcome: Welcome) -> None:
        self._conn = conn
        self.welcome = welcome
        self.name = welcome.name
        self._leaving = False
        self.shutdown: Shutdown | None = None

    @classmethod
    async def join(
        cls, host: str, port: int, name: str, timeout: float = DEFAULT_TIMEOUT
    ) -> ChatClient:
        """Connect and handshake; raises Unreachable, Refused or ConnectionLost."""
        try:
            check_name(name)  # say so before touching the network
        except ProtocolError as exc:
            raise Refused(exc.code, exc.message) from None
        conn = await _Connection.open(host, port, timeout)
        try:
            conn.write(encode(Hello(version=PROTOCOL_VERSION, name=name)))
            reply = await conn.read_reply(timeout)
        except BaseException:
            await conn.close()
            raise
        if isinstance(reply, Welcome):
            return cls(conn, reply)
        await conn.close()
        if isinstance(reply, Error):
            raise Refused(reply.code, reply.message)
        raise ClientError(
            f"{conn.where} answered the handshake with '{reply.__struct_config__.tag}'"
        )

    async def say(self, text: str) -> None:
        """Send a message; raises ProtocolError if it is empty or too long to send."""
        check_text(text)
        self._conn.write(encode(Say(text=text)))
        with contextlib.suppress(ConnectionError):  # the receive loop reports it
            await self._conn.writer.drain()

    async def leave(self) -> None:
        """Say goodbye; the receive loop then ends when the server closes."""
        if not self._leaving:
            self._leaving = True
            self._conn.write(encode(Bye()))
            with contextlib.suppress(ConnectionError):
                await self._conn.writer.drain()

    async def close(self) -> None:
        await self._conn.close()

    def __aiter__(self) -> AsyncIterator[ServerFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[ServerFrame]:
        """Yield frames until the connection ends; answers pings by itself.

        Ends quietly after we left or the server announced its shutdown;
        otherwise an end of stream raises ConnectionLost.
        """
        while True:
            frame = await self._conn.read_frame()
            if frame is None:
                if self._leaving or self.shutdown is not None:
                    return
                raise ConnectionLost(f"connection to {self._conn.where} lost")
            if isinstance(frame, Ping):
                self._conn.write(encode(Pong()))
                continue
            if isinstance(frame, Shutdown):
                self.shutdown = frame
            yield frame


async def fetch_status(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> StatusReply:
    """Ask a server for its status without joining."""
    conn = await _Connection.open(host, port, timeout)
    try:
        conn.write(encode(StatusRequest()))
        reply = await conn.read_reply(timeout)
    finally:
        await conn.close()
    if isinstance(reply, StatusReply):
        return reply
    if isinstance(reply, Error):
        raise Refused(reply.code, reply.message)
    raise ClientError(f"{conn.where} answered the status request with something else")
