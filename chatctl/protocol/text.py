"""Text rules: names, message limits, and sanitising untrusted strings.

Sanitising escapes rather than drops, so what was sent stays visible but inert.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from chatctl.protocol.codes import ErrorCode, ProtocolError
from chatctl.wirelimits import MAX_FRAME_BYTES as MAX_FRAME_BYTES
from chatctl.wirelimits import MAX_TEXT_BYTES as MAX_TEXT_BYTES
from chatctl.wirelimits import MAX_TEXT_LINES as MAX_TEXT_LINES

#: Names: ASCII letters, digits, ``_``, ``-`` and ``.``; re.ASCII because ``\w``
#: and friends match other scripts otherwise.
MAX_NAME_LENGTH = 32
#: Names a ``welcome`` lists at most: each newcomer to a room of N would otherwise cost O(N)
#: bytes, and filling the room O(N^2) (15 000 joins: 1.8 GB of names).
WELCOME_NAMES = 100
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_NAME_LENGTH}}}", re.ASCII)
#: Rooms: ``#`` and 1-30 of the name characters, case-insensitive (kept in lower case).
MAX_ROOM_LENGTH = 30
ROOM_PATTERN = re.compile(rf"#[A-Za-z0-9_.\-]{{1,{MAX_ROOM_LENGTH}}}", re.ASCII)
#: Where a version-1 client, and a version-2 one that names no room, is put.
DEFAULT_ROOM = "#lobby"
#: An away text is one line of at most this many characters.
MAX_AWAY_LENGTH = 200
#: A room's topic, and an operator's reason, are one line of at most this many characters.
MAX_TOPIC_LENGTH = 300
MAX_REASON_LENGTH = 200


def check_name(name: str) -> str:
    """Return the name if valid, else raise ``invalid_name``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ProtocolError(
            ErrorCode.INVALID_NAME,
            f"names are 1-{MAX_NAME_LENGTH} characters of ASCII letters, digits, '_', '-' or '.'",
        )
    return name


def check_room(room: str) -> str:
    """The room's canonical (lower-case) name, or ``invalid_room``."""
    if not ROOM_PATTERN.fullmatch(room):
        raise ProtocolError(
            ErrorCode.INVALID_ROOM,
            f"rooms are '#' and 1-{MAX_ROOM_LENGTH} of ASCII letters, digits, '_', '-' or '.'",
        )
    return room.lower()


def check_away(text: str | None) -> str | None:
    """The away text to keep (None: back), or ``invalid_frame`` for one too long."""
    return _one_line(text, MAX_AWAY_LENGTH, "away texts")


def check_topic(text: str | None) -> str | None:
    """The topic to set (None: cleared), or ``invalid_frame`` for one too long."""
    return _one_line(text, MAX_TOPIC_LENGTH, "topics")


def check_reason(text: str | None) -> str | None:
    """An operator's reason (None: none given), or ``invalid_frame`` for one too long."""
    return _one_line(text, MAX_REASON_LENGTH, "reasons")


def _one_line(text: str | None, limit: int, what: str) -> str | None:
    """A short one-line text, made inert; None for none or blank."""
    if text is None or not text.strip():
        return None
    if len(text) > limit:
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"{what} are at most {limit} characters")
    return clean_line(text.strip())


def name_key(name: str) -> str:
    """Names are unique without regard to case (they are ASCII, so lower() is exact)."""
    return name.lower()


def check_text(text: str, max_bytes: int = MAX_TEXT_BYTES, max_lines: int = MAX_TEXT_LINES) -> str:
    """Return the text if it may be sent as a message, else raise why not.

    Too-long text is refused whole, never truncated, so nothing is cut inside a
    character and no one reads half a message believing it whole.
    """
    # The common message (one line of ASCII) is checked by a few C-speed tests, with no
    # copy: the server does this once per message relayed.
    if not text or text.isspace():
        raise ProtocolError(ErrorCode.EMPTY_MESSAGE, "message is empty")
    if len(text) > max_bytes or (not text.isascii() and len(text.encode("utf-8")) > max_bytes):
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LONG, f"message longer than {max_bytes} bytes")
    if not text.isprintable():  # only then can it hold a line break
        breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
        if breaks + 1 > max_lines:
            raise ProtocolError(
                ErrorCode.MESSAGE_TOO_LONG, f"message longer than {max_lines} lines"
            )
    return text


# --------------------------------------------------------------------------- sanitising

# C0 controls but newline, DEL, C1 controls, the line and paragraph separators (not
# printable, so past the fast path; str.splitlines(), log viewers and JavaScript end a line
# there, as at VT, FF, FS-RS and NEL, which are C0/C1), and the bidi/direction marks that
# can make text render in an order other than the one it was sent in.
_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


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


def clean_message(
    text: str, max_bytes: int = MAX_TEXT_BYTES, max_lines: int = MAX_TEXT_LINES
) -> str:
    """``clean_text(check_text(text, ...))``: what a server relays, or why it refuses it.

    One call, and for the common message (one non-blank line of printable ASCII within
    the limit: nothing to refuse, nothing to escape) four C-speed tests: a server does
    this once per message relayed.
    """
    if text.isascii() and text.isprintable() and 0 < len(text) <= max_bytes and not text.isspace():
        return text
    return clean_text(check_text(text, max_bytes, max_lines))
