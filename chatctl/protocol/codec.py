"""Bytes to frames and back: newline-delimited JSON, decoded incrementally.

The decoder never holds more than ``max_frame_bytes`` plus one read of an
unfinished line, so an endless line cannot eat memory.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from chatctl.protocol.codes import ErrorCode, ProtocolError
from chatctl.protocol.frames import CLIENT_TAGS, ClientFrame
from chatctl.protocol.replies import SERVER_TAGS, ServerFrame
from chatctl.protocol.text import MAX_FRAME_BYTES

_encoder = msgspec.json.Encoder()


def encode(frame: msgspec.Struct) -> bytes:
    """One frame as one line of bytes, ready for the socket."""
    return _encoder.encode(frame) + b"\n"


# --------------------------------------------------------------------------- decoding

T = TypeVar("T")


class Blank:
    """A blank line: no frame, but still a line the peer sent (see ``next_line``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BLANK"


BLANK = Blank()


class FrameDecoder(Generic[T]):
    """Incremental decoder: ``feed`` bytes as they arrive, then call ``next_frame``.

    ``next_frame`` returns a frame, ``None`` when no whole line is buffered, or
    raises ProtocolError for a bad line. A bad line is consumed, so the caller
    may go on with the next one, unless the error is fatal (``frame_too_long``):
    then the decoder is broken and raises the same error from then on, because
    whatever follows the overlong bytes cannot be trusted to be a frame.
    """

    def __init__(
        self, frame_type: type[T], known_tags: frozenset[str], max_frame_bytes: int
    ) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(frame_type)
        self._known_tags = known_tags
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0
        self._broken: ProtocolError | None = None
        self._fed = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            return
        if not self._fed and data:
            self._fed = True
            self._broken = sniff(data)
            if self._broken is not None:
                return
        self._buf += data

    def next_frame(self) -> T | None:
        """The next frame; blank lines are skipped."""
        while (item := self.next_line()) is BLANK:
            pass
        return item  # type: ignore[return-value]  # BLANK was skipped above

    def next_line(self) -> T | Blank | None:
        """Like ``next_frame``, but a blank line comes back as ``BLANK``.

        For a server that must pace blank lines like frames: skipping a flood of
        them inside one call would keep the loop busy for the whole flood.
        """
        if self._broken is not None:
            raise self._broken
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            self._compact()
            if len(self._buf) > self._max:
                self._break()
            return None
        start, self._pos = self._pos, end + 1
        if end - start > self._max:
            self._break()
        # One copy, no strip: JSON allows the whitespace around a line (the \r of CRLF too).
        line = self._buf[start:end]
        if not line or line.isspace():  # tolerated: blank lines, CRLF from nc -C sessions
            return BLANK
        return self._decode(line)

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _break(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._broken = ProtocolError(
            ErrorCode.FRAME_TOO_LONG, f"frame longer than {self._max} bytes"
        )
        raise self._broken

    def _decode(self, line: bytes | bytearray) -> T:
        try:
            if not line.isascii():  # cheap for the common line; msgspec does not check
                line.decode("utf-8")  # the bytes of fields it skips, so check them all here
            return self._decoder.decode(line)
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.INVALID_UTF8, "frame is not valid UTF-8") from None
        except msgspec.ValidationError as exc:
            return self._last_wins(line, exc)
        except RecursionError:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "frame is nested too deeply") from None
        except msgspec.DecodeError:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "frame is not valid JSON") from None

    def _last_wins(self, line: bytes | bytearray, exc: msgspec.ValidationError) -> T:
        """Only on the error path: decode again so that a duplicate key's last value wins.

        The typed decoder already lets the last duplicate of a field win, but it checks a
        repeated ``type`` (and every value of a field) as it goes, so
        ``{"type":"say","type":"ping"}`` fails there. The generic decoder keeps the last
        value of each key; re-encoding that dict gives unique keys to decode typed again.
        """
        try:
            raw = msgspec.json.decode(line)
        except (msgspec.MsgspecError, RecursionError):
            raw = None
        if isinstance(raw, dict):
            try:
                return self._decoder.decode(_encoder.encode(raw))
            except msgspec.ValidationError as again:
                exc = again  # what is wrong with the frame as it stands, last values won
        raise self._classify(raw, exc) from None

    def _classify(self, raw: object, exc: msgspec.ValidationError) -> ProtocolError:
        """Whether the type or the fields were wrong, from the generically decoded line."""
        if isinstance(raw, dict):
            tag = raw.get("type")
            # isinstance first: a list or object tag is unhashable, and `in` would raise.
            if not isinstance(tag, str) or tag not in self._known_tags:
                return ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown or missing frame type")
        return ProtocolError(ErrorCode.INVALID_FRAME, f"invalid frame: {_unquoted(exc)}")


def _unquoted(exc: msgspec.ValidationError) -> str:
    """msgspec's reason, without the value it quotes for a wrong choice (``Invalid enum
    value '...'``): an error never repeats what the client sent. The path comes last."""
    reason, at, path = str(exc).rpartition(" - at `")
    if not at:
        reason, path = str(exc), ""
    if reason.startswith("Invalid enum value"):
        reason = "Invalid enum value"
    return f"{reason}{at}{path}"


_HTTP_METHODS = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
)


def sniff(first_bytes: bytes) -> ProtocolError | None:
    """Recognise the first bytes of a peer that speaks another protocol, to say so at once.

    A TLS ClientHello (record type 0x16) or an HTTP request has no newline a
    chatctl peer would wait for, so without this the peer would sit silent
    until a timeout. No JSON line starts with either.
    """
    if first_bytes[:1] == b"\x16":
        return ProtocolError(
            ErrorCode.UNEXPECTED_TLS, "this port speaks plain chatctl, not TLS: connect without TLS"
        )
    if first_bytes.startswith(_HTTP_METHODS):
        return ProtocolError(
            ErrorCode.UNEXPECTED_HTTP, "this port speaks chatctl (JSON lines over TCP), not HTTP"
        )
    return None


def client_frame_decoder(max_frame_bytes: int = MAX_FRAME_BYTES) -> FrameDecoder[ClientFrame]:
    """What a server uses to read what clients send."""
    return FrameDecoder(ClientFrame, CLIENT_TAGS, max_frame_bytes)  # type: ignore[arg-type]


#: A client reads larger frames: a status reply lists every connected user.
MAX_SERVER_FRAME_BYTES = 64 * 1024 * 1024


def server_frame_decoder(
    max_frame_bytes: int = MAX_SERVER_FRAME_BYTES,
) -> FrameDecoder[ServerFrame]:
    """What a client uses to read what the server sends."""
    return FrameDecoder(ServerFrame, SERVER_TAGS, max_frame_bytes)  # type: ignore[arg-type]
