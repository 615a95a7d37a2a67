"""A room's messages as ``chatctl export`` writes them: plain lines, Markdown, JSON lines.

Every text here came through ``protocol.clean_frame`` (controls escaped, so nothing can
reach a terminal), and none of it is ever Rich markup. The formats:

* ``txt``: one line a message, as a pipe shows a replayed one:
  ``[YYYY-MM-DD HH:MM:SS] #room name: text``, a ``/me`` as ``... #room * name text``;
  the continuation lines of a multi-line message are indented past the head.
* ``md``: a heading with the room and the time span, a ``## <day>`` heading whenever
  the local date changes, then one bullet a message; every name and text is escaped
  (``markdown_text``) so that nothing in it is Markdown, HTML or an entity.
* ``json``: one ``message`` frame a line (NDJSON), exactly as ``tail --json`` prints it.

Times are the viewer's local time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

import msgspec

from chatctl.protocol import Message
from chatctl.ui.render import clock, dated_clock, day_name, day_of, message_line
from chatctl.ui.units import count

FORMATS = ("txt", "md", "json")

_ENCODER = msgspec.json.Encoder()


def json_line(message: Message) -> str:
    """The message frame as one JSON line (``tail --json`` and ``export --format json``)."""
    return _ENCODER.encode(message).decode() + "\n"


def txt_lines(messages: Iterable[Message]) -> Iterator[str]:
    for m in messages:
        line = message_line(m.time, m.name, m.text, room=m.room, action=m.action, dated=True)
        yield line.plain + "\n"


def timeline(
    format: str, room: str, messages: list[Message], since: float | None, now: float
) -> Iterator[str]:
    """The export of ``messages`` (oldest first) in ``format``, piece by piece."""
    if format == "json":
        return (json_line(m) for m in messages)
    if format == "txt":
        return txt_lines(messages)
    return markdown(room, messages, since, now)


# --------------------------------------------------------------------------- Markdown

#: Escaped wherever they are: emphasis, code, links and images, raw HTML and autolinks,
#: entities, headings, block quotes, tables, strikethrough, math ($), mentions (@).
_INLINE = re.compile(r"([\\`*_\[\]<>#!|~&$@])")
#: Escaped at the start of a line only: list items, setext underlines, thematic breaks.
_LINE_START = re.compile(r"^(\d{1,9}(?=[.)])|)([-+=.)])")


def markdown_text(line: str) -> str:
    """One line of untrusted text as Markdown that shows it as it is (CommonMark, GFM).

    Backslash escapes work everywhere outside code and HTML, which the escapes here
    keep from ever starting; leading spaces become ``&nbsp;`` so that indentation shows
    and no line is taken for code.
    """
    escaped = _INLINE.sub(r"\\\1", line)
    body = escaped.lstrip(" ")
    indent = len(escaped) - len(body)
    return "&nbsp;" * indent + _LINE_START.sub(r"\1\\\2", body, count=1)


def _markdown_body(text: str) -> str:
    """A message's lines, each escaped, joined by hard line breaks inside its bullet (an
    empty line holds a ``&nbsp;``: a backslash alone on a line is no line break)."""
    return "\\\n  ".join(markdown_text(line) or "&nbsp;" for line in text.split("\n"))


def _zone(timestamp: float) -> str:
    """``CET, UTC+01:00``: the local zone at ``timestamp``."""
    local = time.localtime(timestamp)
    offset = time.strftime("%z", local)
    return f"{time.strftime('%Z', local)}, UTC{offset[:3]}:{offset[3:]}"


def _span(messages: list[Message], since: float | None) -> str:
    if messages:
        return f"{dated_clock(messages[0].time)} to {dated_clock(messages[-1].time)}"
    return f"since {dated_clock(since)}" if since is not None else ""


def markdown(room: str, messages: list[Message], since: float | None, now: float) -> Iterator[str]:
    span = _span(messages, since)
    yield f"# {markdown_text(room)}{': ' + span if span else ''}\n\n"
    many = count(len(messages), "message")
    if since is not None:
        many += f" since {dated_clock(since)}"
    ends = (messages[0].time, messages[-1].time) if messages else (now,)
    zones = " / ".join(dict.fromkeys(_zone(t) for t in ends))
    yield f"{many}; times are local ({zones}); exported {dated_clock(now)}.\n"
    day: tuple[int, int, int] | None = None
    for m in messages:
        if day_of(m.time) != day:
            day = day_of(m.time)
            yield f"\n## {day_name(m.time)}\n\n"
        name, body = markdown_text(m.name), _markdown_body(m.text)
        if m.action:
            yield f"- {clock(m.time)} \\* **{name}** {body}\n"
        else:
            yield f"- {clock(m.time)} **{name}**: {body}\n"
