"""IRC lines as RFC 1459 / IRCv3 write them: parse, format, split, and make inert.

Pure: no I/O. A line is ``[@tags ][:source ]COMMAND params... [:trailing]``,
at most 512 bytes with its CRLF, not counting the tags (IRCv3 message-tags allow
8191 more). Text from IRC users loses its formatting codes (bold, colour, ...)
before it becomes a chatctl message, so nobody sees ``\\x03`` garbage and nothing
is interpreted; text going to IRC users is chatctl's, already inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatctl.protocol import BLANK, Blank, ErrorCode, ProtocolError, clean_line

#: The body of a line (no tags) with its CRLF, and the tags' own limit (message-tags).
MAX_LINE_BYTES = 512
MAX_TAGS_BYTES = 8191
#: Text bytes per PRIVMSG we send: room for ``:source PRIVMSG target :`` within 512.
TEXT_CHUNK_BYTES = 400

#: Bold, colour (with its one or two numbers), hex colour, reset, monospace, reverse,
#: italic, strikethrough, underline.
_FORMATTING = re.compile(
    "\x03(?:\\d{1,2}(?:,\\d{1,2})?)?|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
_TAG_ESCAPES = {"\\:": ";", "\\s": " ", "\\\\": "\\", "\\r": "\r", "\\n": "\n"}
_TAG_ESCAPE = re.compile(r"\\.?")


@dataclass(slots=True)  # not frozen: that costs 0.35 us more per line, once per line read
class Line:
    """One IRC line from a client: its command upper-cased, its params split."""

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def param(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None


def parse(text: str) -> Line:
    """One line (without its line end), or ``invalid_frame`` if it is not one."""
    if text.startswith("PRIVMSG "):  # most lines by far: one partition
        target, sep, said = text[8:].partition(" :")
        if sep and target and " " not in target:
            return Line("PRIVMSG", [target, said])
    tags: dict[str, str] = {}
    rest = text
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw)
    rest = rest.lstrip(" ")
    if rest.startswith(":"):  # a source: ignored from clients, as servers do
        _, _, rest = rest.partition(" ")
    trailing: str | None = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    words = rest.split()
    if not words:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "an IRC line needs a command")
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Line(words[0].upper(), params, tags)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = _TAG_ESCAPE.sub(lambda m: _TAG_ESCAPES.get(m.group(), m.group()[1:]), value)
    return tags


def escape_tag(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\:")
        .replace(" ", "\\s")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )


def middle(text: str) -> str:
    """``text`` as one middle parameter of a line we send: made inert, and ``*`` for what
    IRC cannot hold there (nothing, a space, a leading ``:``), as a client's own nick or
    word may be: it would end the parameters there and the line would not parse."""
    text = clean_line(text)
    return "*" if not text or " " in text or text.startswith(":") else text


def strip_formatting(text: str) -> str:
    """IRC formatting codes removed: what an IRC user meant, as plain text."""
    if text.isprintable():  # the common line: no control character at all
        return text
    return _FORMATTING.sub("", text)


def chunks(text: str, size: int = TEXT_CHUNK_BYTES) -> list[str]:
    """``text`` as IRC lines: one per line of it, each cut to at most ``size`` UTF-8
    bytes, never inside a character. An empty line becomes one space (IRC has none)."""
    out: list[str] = []
    for line in text.split("\n"):
        data = line.encode("utf-8")
        if len(data) <= size:
            out.append(line or " ")
            continue
        while data:
            cut = min(size, len(data))
            while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # inside a character
                cut -= 1
            out.append(data[:cut].decode("utf-8"))
            data = data[cut:]
    return out


class LineDecoder:
    """Bytes in, lines out: LF (or CRLF) ends a line; an over-long line is refused
    (``message_too_long``, not fatal: the rest of it is skipped), as are NUL, a lone
    CR, and bytes that are not UTF-8."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skipping = False
        #: The complete lines of the last reads, split at once, and how many were taken.
        self._lines: list[bytes] = []
        self._at = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def _split(self) -> bool:
        """The complete lines in the buffer, split at once (one copy, one split)."""
        buffer = self._buffer
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > MAX_TAGS_BYTES + MAX_LINE_BYTES and not self._skipping:
                self._skipping = True
                buffer.clear()
                raise _too_long()
            if self._skipping:
                buffer.clear()
            return False
        lines = bytes(buffer[:end]).split(b"\n")
        del buffer[: end + 1]
        if self._skipping:  # the end of a line too long, skipped
            self._skipping = False
            del lines[0]
        self._lines, self._at = lines, 0
        return bool(lines)

    def next_line(self) -> Line | Blank | None:
        if self._at >= len(self._lines) and not self._split():
            return None
        raw = self._lines[self._at]
        self._at += 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if raw.count(b" ") == len(raw):
            return BLANK
        if raw[:1] == b"@":
            body = raw.split(b" ", 1)[1] if b" " in raw else raw
            if len(body) + 2 > MAX_LINE_BYTES or len(raw) - len(body) > MAX_TAGS_BYTES:
                raise _too_long()
        elif len(raw) + 2 > MAX_LINE_BYTES:
            raise _too_long()
        if b"\0" in raw or b"\r" in raw:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "NUL and CR may not be inside a line")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.INVALID_UTF8, "lines must be UTF-8") from None
        return parse(text)


def _too_long() -> ProtocolError:
    message = f"IRC lines are at most {MAX_LINE_BYTES} bytes"
    return ProtocolError(ErrorCode.MESSAGE_TOO_LONG, message)
