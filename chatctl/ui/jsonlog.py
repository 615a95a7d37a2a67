"""``serve --log-format json``: the server log as one JSON object per line, for machines.

Each line says what the text log says (``message``), with a stable name for what
happened (``event``), its severity (``level``), when (``ts``, RFC 3339 UTC with
milliseconds), and its parts as keys of their own (``name``, ``room``, ``reason``, ...),
so journald, Loki or ELK can filter on them without parsing English. Encoded by msgspec
and written as UTF-8 bytes whatever the locale: JSON escapes every control character,
so no name or message can reach a terminal that shows the log. No colour, no footer.
Private messages are never logged (the server never reports them). docs/operations.md
lists every event.
"""

from __future__ import annotations

import re
import time
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import msgspec

from chatctl.server.events import Listening, ServerEvent
from chatctl.ui.serverlog import ServerLog, describe

#: Keys every line has, first; an event's field of the same name is renamed.
_RESERVED = ("ts", "level", "event", "message")
#: Fields renamed, by event, where the field's own name is taken (``Moderated.event``).
_RENAMED = {
    "moderated": {"event": "action"},
    "history_failed": {"message": "error"},
    "search_failed": {"message": "error"},
    "operators_failed": {"message": "error"},
}
#: Levels other than the colour's: a shutdown asked for is no warning.
_LEVELS = {"stopping": "info"}


def event_name(kind: type[ServerEvent]) -> str:
    """An event's stable name: its class's, in snake_case (``UserLeft``: ``user_left``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()


def level_of(style: str) -> str:
    """The level the text log's colour stands for: red an error, yellow a warning."""
    if "red" in style:
        return "error"
    return "warning" if "yellow" in style else "info"


def timestamp(now: float) -> str:
    """``2026-12-04T09:30:00.123Z``."""
    seconds = int(now)
    millis = min(999, int((now - seconds) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def fields_of(event: ServerEvent) -> dict[str, Any]:
    """The event's own fields as JSON-ready values (addresses as ``{"host", "port"}``)."""
    if isinstance(event, Listening):
        return {
            "addresses": [{"host": h, "port": p} for h, p in event.addresses],
            "irc": [{"host": h, "port": p} for h, p in event.irc],
        }
    fields: dict[str, Any] = msgspec.to_builtins(event)
    renamed = _RENAMED.get(event_name(type(event)), {})
    out: dict[str, Any] = {}
    for key, value in fields.items():
        key = renamed.get(key, key)
        if key in _RESERVED:
            key += "_"
        out[key] = _redact(value) if key == "url" and isinstance(value, str) else value
    return out


def _redact(url: str) -> str:
    """A URL without its password (``redis://:secret@host`` logs as ``redis://:***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class JsonLog(ServerLog):
    """The server's observer and ``serve``'s own lines, one JSON object per line."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out, terminal=False)
        self._encode = msgspec.json.Encoder().encode
        #: Bytes where the stream has them: UTF-8 whatever the locale's encoding.
        self._binary = getattr(out, "buffer", None)

    def __call__(self, event: ServerEvent) -> None:
        name = event_name(type(event))
        text, style = describe(event) or (name, "")
        self.write(name, _LEVELS.get(name) or level_of(style), text, fields_of(event))

    def line(
        self,
        text: str,
        style: str = "",
        event: str = "note",
        level: str | None = None,
        **fields: object,
    ) -> None:
        self.write(event, level or level_of(style), text, fields)

    def write(self, event: str, level: str, message: str, fields: dict[str, Any]) -> None:
        record = {"ts": timestamp(time.time()), "level": level, "event": event}
        record["message"] = message.strip()  # the text log's indents are for people
        record.update(fields)
        data = self._encode(record) + b"\n"
        try:
            if self._binary is not None:
                self._binary.write(data)
                self._binary.flush()
            else:
                self.out.write(data.decode())
                self.out.flush()
        except OSError:
            self.lost()
