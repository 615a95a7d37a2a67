"""How chat events look: one Rich ``Text`` per event.

Untrusted strings (names, texts, reasons, rooms) only ever enter a ``Text`` as
plain content, never as markup, and styles go on the trusted parts; the client
core already escaped control characters (``protocol.clean_frame``). ``Text.plain``
of the same objects is the pipe-friendly form, so both modes show the same words.

Layout: ``[HH:MM:SS] name: text`` for messages, ``[HH:MM:SS] * ...`` for notices;
with more than one room, the room comes after the stamp. Continuation lines of a
multi-line message are indented past the name, so no line of a message can pass
for another message or a notice (those start at column 0 with ``[``).

A message replayed from the server's history is dim as a whole (the name keeps its
colour); in a terminal a ``date_line`` goes before each line whose local date is
not the previous line's (``chatctl.ui.output``). A pipe has no date lines: there a
replayed message is stamped ``[YYYY-MM-DD HH:MM:SS]`` instead, so it carries its
date and no script matching live lines takes it for a new one.
"""

from __future__ import annotations

import re
import time
import zlib

from rich.text import Text

from chatctl.protocol import (
    RoomState,
    clean_text,
    name_key,
)

_PALETTE = (
    "cyan",
    "green",
    "yellow",
    "blue",
    "magenta",
    "bright_cyan",
    "bright_green",
    "bright_yellow",
    "bright_blue",
    "bright_magenta",
    "dark_orange",
    "orchid",
    "turquoise2",
    "spring_green2",
    "deep_sky_blue1",
    "gold1",
)
#: Private messages stand out: the same colour for every one, a marker, bold.
PRIVATE_STYLE = "bold magenta"
#: A message that names you.
MENTION_STYLE = "bold reverse yellow"
#: What an operator did: never mistaken for something someone said.
MODERATION_STYLE = "bold yellow"


def name_style(name: str) -> str:
    """A colour per name, the same in every client and every run (crc32, not hash())."""
    return _PALETTE[zlib.crc32(name.lower().encode()) % len(_PALETTE)]


def clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def dated_clock(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def day_of(timestamp: float) -> tuple[int, int, int]:
    """The local date of ``timestamp``: what a date line is about."""
    local = time.localtime(timestamp)
    return local.tm_year, local.tm_mon, local.tm_mday


def day_name(timestamp: float) -> str:
    """``Monday 30 November 2026``: the local date of ``timestamp``, as date lines say it."""
    local = time.localtime(timestamp)
    return time.strftime("%A", local) + f" {local.tm_mday} " + time.strftime("%B %Y", local)


def date_line(timestamp: float) -> Text:
    """``— Monday 30 November 2026 —``, plain dim: the lines after it are from that day."""
    return Text(f"— {day_name(timestamp)} —", style="dim")


class ChatLine(Text):
    """A line of the conversation that knows where its head ends (``indent``).

    The head is ``[HH:MM:SS] name: `` or ``[HH:MM:SS] * ``: continuation lines of a
    multi-line message start past it, and so do the rows of a long line that the
    interactive client wraps (``chatctl.ui.wrap``). Pipes print ``plain``, unwrapped.
    ``when``: the time in its stamp, for the date lines between days.
    """

    indent: int = 0
    when: float | None = None


def _stamp(timestamp: float, room: str | None = None, *, dated: bool = False) -> ChatLine:
    """A line that starts with its dim ``[HH:MM:SS]`` (and the room, with several);
    ``dated``: ``[YYYY-MM-DD HH:MM:SS]``.

    The dim is a span on the stamp, not the Text's base style: a base style
    applies to everything appended after it, and dimmed whole messages.
    """
    line = ChatLine()
    line.when = timestamp
    line.append(f"[{dated_clock(timestamp) if dated else clock(timestamp)}] ", style="dim")
    if room is not None:
        line.append(f"{room} ", style="bold")
    return line


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a word, in any case (``alice.`` yes, ``alice.b`` no)."""
    pattern = rf"(?<![A-Za-z0-9_.\-]){re.escape(name)}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_])"
    return re.search(pattern, text, flags=re.IGNORECASE | re.ASCII) is not None


def _body(line: ChatLine, text: str, style: str = "") -> ChatLine:
    """Append ``text``, its continuation lines indented to where it starts (the head's end)."""
    line.indent = len(line.plain)
    indent = "\n" + " " * line.indent
    line.append(indent.join(text.split("\n")), style=style)
    return line


def message_line(
    timestamp: float,
    name: str,
    text: str,
    *,
    own: bool = False,
    room: str | None = None,
    action: bool = False,
    mention: bool = False,
    history: bool = False,
    dated: bool = False,
) -> ChatLine:
    """A message; ``history``: replayed, dim as a whole, its name in its colour but not
    bold (bold and dim share one attribute in many terminals) and no mention highlight;
    ``dated``: the stamp has the date too."""
    line = _stamp(timestamp, room, dated=dated)
    weight = "" if history else "bold "
    style = weight + name_style(name) + (" reverse" if own else "")
    if action:
        line.append("* ", style=weight.strip())
        line.append(name, style=style)
        line.append(" ")
    else:
        line.append(name, style=style)
        line.append(": ")
    body_style = MENTION_STYLE if mention and not history else ("italic" if own else "")
    _body(line, text, body_style)
    if history:
        line.stylize_before("dim")  # under every other span: all of it dim, colours kept
    return line


def private_line(
    timestamp: float,
    sender: str,
    to: str,
    text: str,
    *,
    own: bool,
    action: bool = False,
    history: bool = False,
    dated: bool = False,
) -> ChatLine:
    """``[PM from bob] hi`` / ``[PM to bob] hi``: never mistaken for a room message;
    ``history`` and ``dated`` as for ``message_line``."""
    line = _stamp(timestamp, dated=dated)
    line.append(f"[PM to {to}]" if own else f"[PM from {sender}]", style=PRIVATE_STYLE)
    line.append(" ")
    if action:
        line.append(f"* {sender} ", style=PRIVATE_STYLE)
    _body(line, text, "magenta")
    if history:
        line.stylize_before("dim")
    return line


def moderation_line(
    timestamp: float,
    name: str,
    text: str,
    *,
    room: str | None = None,
    me: bool = False,
    history: bool = False,
) -> ChatLine:
    """``* teacher kicked bob (spam)``: an operator's action, in the words the server
    chose; bold when it was done to us, dim when replayed."""
    line = _stamp(timestamp, room)
    line.append("* ", style=MODERATION_STYLE)
    line.append(name, style=f"bold {name_style(name)}")
    line.append(" ")
    _body(line, text, MENTION_STYLE if me and not history else MODERATION_STYLE)
    if history:
        line.stylize_before("dim")
    return line


def notice_line(
    timestamp: float, text: str, style: str = "dim", room: str | None = None
) -> ChatLine:
    line = _stamp(timestamp, room)
    line.indent = len(line.plain) + len("* ")
    line.append(f"* {text}", style=style)
    return line


def notice_line_now(text: str, style: str = "dim") -> ChatLine:
    return notice_line(time.time(), text, style)


def divider_line(new: int, more: int, room: str | None = None) -> ChatLine:
    """``— 3 new since you left —`` above the first unread message of a replay."""
    text = f"— {new} new since you left"
    if more:
        text += f" ({more} older ones: /history)"
    line = ChatLine()
    line.append(text + " —", style="bold")
    if room is not None:
        line.append(f" {room}", style="dim")
    return line


def unsent_line(
    timestamp: float, text: str, *, offline: bool = False, unsure: bool = False
) -> ChatLine:
    """``* not sent: <text>``: a line of ours the server never relayed (``unsure``:
    ``* not confirmed: <text>``, not seen coming back when the connection was lost).

    The text is the user's own input, so it is escaped here (a piped line may
    hold anything), and continuation lines are indented like a message's.
    """
    line = _stamp(timestamp)
    if unsure:
        line.append("* not confirmed: ", style="yellow")
        return _body(line, clean_text(text), "yellow")
    line.append("* not sent (offline): " if offline else "* not sent: ", style="red")
    return _body(line, clean_text(text), "red")


def who_else(users: list[str], online: int, me: str) -> str:
    others = [u for u in users if name_key(u) != name_key(me)]
    unnamed = online - len(others) - 1  # a big room's state names only some
    who = ", ".join(others) if others else "nobody else yet"
    if unnamed > 0:
        who = f"{who} and {unnamed} more" if others else f"{unnamed} others"
    return who


def welcome_line(
    name: str,
    server: str,
    rooms: list[RoomState],
    *,
    hint: bool = True,
    again: bool = False,
    where: str | None = None,
) -> ChatLine:
    """The welcome notice, with who is in each room; ``again`` after a reconnection;
    ``where``: the address, when the client had several to choose from."""
    verb = "reconnected to" if again else "joined"
    text = f"{verb} {server}{f' on {where}' if where else ''} as {name}"
    if len(rooms) == 1:
        state = rooms[0]
        text += f" in {state.room}; online: {who_else(state.users, state.online, name)}."
        if state.topic:
            text += f" Topic: {state.topic}"
    elif rooms:
        where = "; ".join(
            f"{s.room}: {who_else(s.users, s.online, name)}"
            + (f" (topic: {s.topic})" if s.topic else "")
            for s in rooms
        )
        text += f" in {len(rooms)} rooms; {where}."
    else:
        text += ", in no room yet (/join ROOM)."
    if hint:
        text += " /help: commands, /quit: leave."
    return notice_line(time.time(), text, style="green")
