"""Room events as IRC lines: what every IRC member of a room reads, encoded once.

Pure. A room's IRC members share these bytes (``chatctl.server.dialect``), so
nothing here may depend on who reads them, only on whether they asked for tags
(``server-time``, ``message-tags``): two encodings at most per event.

Everyone is ``name!name@chatctl`` to IRC: the door shows no one's address.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from enum import IntEnum

from chatctl.irc.lines import MAX_LINE_BYTES, chunks, escape_tag
from chatctl.protocol import BANNED, KICKED, Joined, Left, Message, NickChanged, Parted, RoomEvent

#: The door's own name on IRC: the source of numerics and notices.
SERVER_NAME = "chatctl"
#: The ``id`` a NOTICE's ``say`` carries, so that it reaches IRC users as a NOTICE again.
NOTICE_ID = "notice"
#: Moderation events that are IRC channel modes, and the mode each sets.
_MODES = {
    "op": "+o",
    "deop": "-o",
    "voice": "+v",
    "devoice": "-v",
    "moderate": "+m",
    "unmoderate": "-m",
}


class Tags(IntEnum):
    """Which tags a client gets: none, ``server-time``'s, or all (``message-tags``)."""

    NONE = 0
    TIME = 1
    ALL = 2


def source(name: str) -> str:
    return f"{name}!{name}@{SERVER_NAME}"


def stamp(seconds: float) -> str:
    """IRCv3 ``server-time``: UTC, milliseconds, a Z."""
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(whole)) + f".{millis:03d}Z"


def msgid(message: Message) -> str:
    """A message's id on IRC: its ``seq`` and room (``42#lobby``), one total order per
    room, so unique; the lines after the first of a long message add ``/1``, ``/2``..."""
    return f"{message.seq}{message.room or '#lobby'}"


def tags_for(
    seconds: float, id: str | None = None, batch: str | None = None, time: bool = True
) -> str:
    parts = [f"batch={batch}"] if batch else []
    if time:
        parts.append(f"time={stamp(seconds)}")
    if id is not None:
        parts.append(f"msgid={escape_tag(id)}")
    return "@" + ";".join(parts) + " " if parts else ""


def message_lines(
    message: Message,
    target: str,
    prefix: str = "",
    tags: Tags = Tags.NONE,
    batch: str | None = None,
) -> list[str]:
    """A chatctl message as PRIVMSG lines to ``target`` (NOTICE, if it was one): one per
    line of it, each cut to fit IRC's 512 bytes; a ``/me`` as CTCP ACTION."""
    notice = message.id == NOTICE_ID or (message.id or "").startswith(NOTICE_ID + ":")
    verb = "NOTICE" if notice else "PRIVMSG"
    head = f":{source(message.name)} {verb} {target} :"
    text = message.text
    plain = not (tags or batch or prefix or message.action)
    if plain and len(text) <= 100 and text.isascii() and "\n" not in text:
        return [head + text]  # one line, nothing to cut
    wrap = 9 if message.action else 0  # \x01ACTION ... \x01
    room_for = MAX_LINE_BYTES - 2 - len(head.encode()) - len(prefix.encode()) - wrap
    lines = []
    base = msgid(message) if message.room is not None else None
    for index, chunk in enumerate(chunks(text, max(room_for, 32))):
        said = prefix + chunk
        body = f"\x01ACTION {said}\x01" if message.action else said
        tagged = ""
        if tags or batch:
            id = base if index == 0 or base is None else f"{base}/{index}"
            tagged = tags_for(message.time, id if tags is Tags.ALL else None, batch, bool(tags))
        lines.append(f"{tagged}{head}{body}")
    return lines


def _event_lines(message: Message, room: str) -> list[str]:
    """An operator's action (``message.event``) as IRC says it."""
    by = source(message.name)
    event = message.event
    if event == "topic":
        return [f":{by} TOPIC {room} :{message.topic or ''}"]
    if event == "kick" and message.target:
        return [f":{by} KICK {room} {message.target} :{message.text}"]
    if event in _MODES:
        target = f" {message.target}" if message.target and "m" not in _MODES[event] else ""
        return [f":{by} MODE {room} {_MODES[event]}{target}"]
    return [f":{SERVER_NAME} NOTICE {room} :{message.name} {message.text}"]


def lines(event: RoomEvent, tags: Tags) -> list[str]:
    """The IRC lines for one room event (none: IRC shows it another way)."""
    room = event.room or "#lobby"
    match event:
        case Message(event=None):
            return message_lines(event, room, tags=tags)
        case Message():
            return _tag(_event_lines(event, room), event.time, tags)
        case Joined():
            return _tag([f":{source(event.name)} JOIN {room}"], event.time, tags)
        case Parted(reason=reason) if reason == KICKED:
            return []  # the KICK line of the operator's kick said it
        case Parted(reason=reason) if reason == BANNED:
            line = f":{SERVER_NAME} KICK {room} {event.name} :banned"
            return _tag([line], event.time, tags)
        case Parted():
            reason = f" :{event.reason}" if event.reason else ""
            return _tag([f":{source(event.name)} PART {room}{reason}"], event.time, tags)
        case Left():
            return _tag([f":{source(event.name)} QUIT :{event.reason}"], event.time, tags)
        case NickChanged():
            return _tag([f":{source(event.name)} NICK {event.new}"], event.time, tags)
    return []  # pragma: no cover  RoomEvent is the five above


def _tag(out: list[str], seconds: float, tags: Tags) -> list[str]:
    if not tags:
        return out
    head = tags_for(seconds)
    return [head + line for line in out]


def encoder(tags: Tags) -> Callable[[RoomEvent], bytes]:
    """The room-broadcast encoding for IRC members that get ``tags``. A leave or a nick
    change is about a person, not a room: b"" here, told once by the hub instead
    (``Dialect.once_per_person``), not once per room shared."""

    def encode(event: RoomEvent) -> bytes:
        kind = event.__class__
        if kind is Message:
            text = event.text  # type: ignore[union-attr]  # a Message
            if (  # the hot path: one plain line
                not tags
                and event.event is None  # type: ignore[union-attr]
                and not event.action  # type: ignore[union-attr]
                and event.id != NOTICE_ID  # type: ignore[union-attr]
                and len(text) <= 100
                and text.isascii()
                and text.isprintable()
            ):
                name = event.name
                return f":{name}!{name}@{SERVER_NAME} PRIVMSG {event.room} :{text}\r\n".encode()
        elif kind is Left or kind is NickChanged:
            return b""
        return wire(lines(event, tags))

    return encode


def wire(out: list[str]) -> bytes:
    """Lines on the wire, CRLF after each; a line end or NUL inside one (which chatctl's
    own checks never let through) becomes a space, so no text can start a line."""
    if not out:
        return b""
    if len(out) == 1:
        return (_inert(out[0]) + "\r\n").encode("utf-8")
    data = "".join(f"{_inert(line)}\r\n" for line in out)
    return data.encode("utf-8")


def _inert(line: str) -> str:
    if "\r" in line or "\n" in line or "\0" in line:
        return line.replace("\r", " ").replace("\n", " ").replace("\0", " ")
    return line
