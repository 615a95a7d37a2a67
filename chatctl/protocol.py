"""The chatctl wire protocol: frames, limits, validation and sanitising.

This module is pure (sans-I/O, in the manner of h11 and websockets): bytes go in,
frames come out, frames go in, bytes come out. It imports no asyncio, socket or
terminal code, so the server, the client, tests and third-party tools all share
one definition of what is on the wire. ``docs/protocol.md`` documents it for
outsiders; keep the two in step.

Framing is newline-delimited JSON (one UTF-8 object per line, ``type`` names the
frame). The decoder never holds more than ``max_frame_bytes`` plus one read of
an unfinished line, so an endless line cannot eat memory.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

import msgspec

PROTOCOL_VERSION = 1

#: Longest frame (one JSON line, newline excluded) a peer may send.
MAX_FRAME_BYTES = 32 * 1024
#: Longest message text, counted in UTF-8 bytes and in lines.
MAX_TEXT_BYTES = 4096
MAX_TEXT_LINES = 100
#: Names: ASCII letters, digits, ``_``, ``-`` and ``.``; re.ASCII because ``\w``
#: and friends match other scripts otherwise.
MAX_NAME_LENGTH = 32
#: Names a ``welcome`` lists at most: each newcomer to a room of N would otherwise cost O(N)
#: bytes, and filling the room O(N^2) (15 000 joins: 1.8 GB of names).
WELCOME_NAMES = 100
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_NAME_LENGTH}}}", re.ASCII)


class ErrorCode(StrEnum):
    """Stable error codes carried by ``error`` frames (see docs/protocol.md)."""

    INVALID_FRAME = "invalid_frame"
    INVALID_UTF8 = "invalid_utf8"
    UNKNOWN_TYPE = "unknown_type"
    FRAME_TOO_LONG = "frame_too_long"
    MESSAGE_TOO_LONG = "message_too_long"
    EMPTY_MESSAGE = "empty_message"
    INVALID_NAME = "invalid_name"
    NAME_TAKEN = "name_taken"
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    TOO_MANY_ERRORS = "too_many_errors"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    SERVER_FULL = "server_full"
    THROTTLED = "throttled"
    UNEXPECTED_TLS = "unexpected_tls"
    UNEXPECTED_HTTP = "unexpected_http"
    SLOW_CONSUMER = "slow_consumer"
    PING_TIMEOUT = "ping_timeout"
    PASSWORD_REQUIRED = "password_required"  # noqa: S105  an error code, not a password
    WRONG_PASSWORD = "wrong_password"  # noqa: S105  an error code, not a password
    ACCESS_DENIED = "access_denied"


#: After these the stream cannot be trusted to resynchronise: close the connection.
FATAL_CODES = frozenset(
    {ErrorCode.FRAME_TOO_LONG, ErrorCode.UNEXPECTED_TLS, ErrorCode.UNEXPECTED_HTTP}
)


class ProtocolError(Exception):
    """The one error type of this module: a stable code plus a human sentence.

    The sentence never quotes the offending input: it may be hostile or secret.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


# --------------------------------------------------------------------------- frames

Version = Annotated[int, msgspec.Meta(ge=0, le=2**31)]


class _Frame(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of every frame; ``type`` on the wire is each subclass's tag."""


# Client -> server


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


class Hello(_Frame, tag="hello", frozen=True, omit_defaults=True):
    """First frame of a chat participant: protocol version, wanted name, room password."""

    version: Version
    name: str
    password: str | None = None

    def __repr__(self) -> str:  # never show the password, in a log or a traceback
        masked = _masked(self.password)
        return f"Hello(version={self.version!r}, name={self.name!r}, password={masked})"


class Say(_Frame, tag="say", frozen=True):
    """A message to the room; may span several lines (a paste is one message)."""

    text: str


class StatusRequest(_Frame, tag="status", frozen=True, omit_defaults=True):
    """Ask for server facts; allowed with or without joining (password: the room's, if any)."""

    password: str | None = None

    def __repr__(self) -> str:
        return f"StatusRequest(password={_masked(self.password)})"


class Bye(_Frame, tag="bye", frozen=True):
    """Leave on purpose; lets the server tell "quit" from "dropped"."""


# Both directions


class Ping(_Frame, tag="ping", frozen=True):
    """Liveness probe; the peer answers with ``pong``."""


class Pong(_Frame, tag="pong", frozen=True):
    """Answer to ``ping``."""


# Server -> client


class Welcome(_Frame, tag="welcome", frozen=True):
    """Handshake accepted: who is online (the newcomer included).

    ``users`` holds at most ``WELCOME_NAMES`` names, the longest present first; ``online``
    counts everyone. (0 from a server that did not send it: then ``users`` is everyone.)
    """

    version: int
    name: str
    users: list[str]
    server: str
    seq: int
    online: int = 0


class Message(_Frame, tag="message", frozen=True):
    """A relayed message, stamped by the server with its time and sequence number."""

    seq: int
    time: float
    name: str
    text: str


class Joined(_Frame, tag="join", frozen=True):
    """Someone entered the room."""

    seq: int
    time: float
    name: str


class Left(_Frame, tag="leave", frozen=True):
    """Someone left; ``reason`` says why (quit, dropped, error, slow_consumer, ...)."""

    seq: int
    time: float
    name: str
    reason: str


class UserInfo(msgspec.Struct, frozen=True):
    """One connected participant, as ``status`` reports it."""

    name: str
    address: str
    connected_at: float
    idle_seconds: float
    messages_sent: int
    bytes_queued: int


class ServerInfo(msgspec.Struct, frozen=True):
    """Facts about the server itself, as ``status`` reports them."""

    version: str
    protocol: int
    started_at: float
    uptime_seconds: float
    users: int
    connections: int
    messages_relayed: int
    leave_reasons: dict[str, int]


class StatusReply(_Frame, tag="status_reply", frozen=True):
    """Answer to ``status``."""

    server: ServerInfo
    users: list[UserInfo]


class Error(_Frame, tag="error", frozen=True, omit_defaults=True):
    """Something the peer sent was refused; ``code`` is stable, ``message`` is for humans.

    ``retry_after_ms`` comes with ``throttled``: when trying again may succeed.
    """

    code: str
    message: str
    retry_after_ms: int | None = None


class Shutdown(_Frame, tag="shutdown", frozen=True):
    """The server is going away; the connection closes next."""

    reason: str


ClientFrame = Hello | Say | StatusRequest | Bye | Ping | Pong
ServerFrame = Welcome | Message | Joined | Left | StatusReply | Error | Shutdown | Ping | Pong
Frame = ClientFrame | ServerFrame

_CLIENT_TAGS = frozenset({"hello", "say", "status", "bye", "ping", "pong"})
_SERVER_TAGS = frozenset(
    {"welcome", "message", "join", "leave", "status_reply", "error", "shutdown", "ping", "pong"}
)

# --------------------------------------------------------------------------- encoding

_encoder = msgspec.json.Encoder()


def encode(frame: Frame) -> bytes:
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
        line = bytes(self._buf[start:end]).strip()
        if not line:  # tolerated: blank lines and CRLF from hand-typed sessions (nc -C)
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

    def _decode(self, line: bytes) -> T:
        try:
            if not line.isascii():  # cheap for the common line; msgspec does not check
                line.decode("utf-8")  # the bytes of fields it skips, so check them all here
            return self._decoder.decode(line)
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.INVALID_UTF8, "frame is not valid UTF-8") from None
        except msgspec.ValidationError as exc:
            raise self._classify(line, exc) from None
        except RecursionError:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "frame is nested too deeply") from None
        except msgspec.DecodeError:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "frame is not valid JSON") from None

    def _classify(self, line: bytes, exc: msgspec.ValidationError) -> ProtocolError:
        # Only on the error path: find out whether the type or the fields were wrong.
        try:
            raw = msgspec.json.decode(line)
        except (msgspec.MsgspecError, RecursionError):
            raw = None
        if isinstance(raw, dict) and raw.get("type") not in self._known_tags:
            return ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown or missing frame type")
        return ProtocolError(ErrorCode.INVALID_FRAME, f"invalid frame: {exc}")


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
    return FrameDecoder(ClientFrame, _CLIENT_TAGS, max_frame_bytes)  # type: ignore[arg-type]


#: A client reads larger frames: a status reply lists every connected user.
MAX_SERVER_FRAME_BYTES = 64 * 1024 * 1024


def server_frame_decoder(
    max_frame_bytes: int = MAX_SERVER_FRAME_BYTES,
) -> FrameDecoder[ServerFrame]:
    """What a client uses to read what the server sends."""
    return FrameDecoder(ServerFrame, _SERVER_TAGS, max_frame_bytes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- validation


def check_name(name: str) -> str:
    """Return the name if valid, else raise ``invalid_name``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ProtocolError(
            ErrorCode.INVALID_NAME,
            f"names are 1-{MAX_NAME_LENGTH} characters of ASCII letters, digits, '_', '-' or '.'",
        )
    return name


def name_key(name: str) -> str:
    """Names are unique without regard to case (they are ASCII, so lower() is exact)."""
    return name.lower()


def check_text(text: str, max_bytes: int = MAX_TEXT_BYTES, max_lines: int = MAX_TEXT_LINES) -> str:
    """Return the text if it may be sent as a message, else raise why not.

    Too-long text is refused whole, never truncated, so nothing is cut inside a
    character and no one reads half a message believing it whole.
    """
    if not text.strip():
        raise ProtocolError(ErrorCode.EMPTY_MESSAGE, "message is empty")
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LONG, f"message longer than {max_bytes} bytes")
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    if breaks + 1 > max_lines:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LONG, f"message longer than {max_lines} lines")
    return text


# --------------------------------------------------------------------------- sanitising

# C0 controls but newline, DEL, C1 controls, and the bidi/direction marks that can
# make text render in an order other than the one it was sent in.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: str) -> str:
    """Make untrusted text inert for any terminal: escape controls, normalise newlines.

    Escaping (ESC becomes the four characters ``\\x1b``) rather than dropping
    keeps what was sent visible. Idempotent: cleaning clean text changes nothing.
    """
    if text.isprintable():  # fast path: the common message has nothing to escape
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return _UNSAFE.sub(_escape, text)


_UNSAFE_IN_LINE = re.compile(f"\n|{_UNSAFE.pattern}")


def clean_line(text: str) -> str:
    """Like clean_text, for one-line fields (names, reasons): newlines are escaped too."""
    if text.isprintable():
        return text
    return _UNSAFE_IN_LINE.sub(_escape, text.replace("\t", " "))


S = TypeVar("S", bound=msgspec.Struct)


def clean_frame(frame: S) -> S:
    """The frame with every string inside it made inert; ``text`` fields keep newlines.

    A client applies this to all it receives, so a hostile or buggy server
    cannot reach the terminal either.
    """
    changes: dict[str, object] = {}
    for field in frame.__struct_fields__:
        value = getattr(frame, field)
        cleaned = clean_text(value) if field == "text" and isinstance(value, str) else _clean(value)
        if cleaned is not value:
            changes[field] = cleaned
    return msgspec.structs.replace(frame, **changes) if changes else frame


def _clean(value: object) -> object:
    if isinstance(value, str):
        return clean_line(value)
    if isinstance(value, msgspec.Struct):
        return clean_frame(value)
    if isinstance(value, list):
        items = [_clean(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = {_clean(k): _clean(v) for k, v in value.items()}
        return value if pairs == value else pairs
    return value
