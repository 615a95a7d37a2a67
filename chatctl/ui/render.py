"""How chat events look: one Rich ``Text`` per event.

Untrusted strings (names, texts, reasons) only ever enter a ``Text`` as plain
content, never as markup, and styles go on the trusted parts; the client core
already escaped control characters (``protocol.clean_frame``). ``Text.plain``
of the same objects is the pipe-friendly form, so both modes show the same words.

Layout: ``[HH:MM:SS] name: text`` for messages, ``[HH:MM:SS] * ...`` for notices.
Continuation lines of a multi-line message are indented past the name, so no
line of a message can pass for another message or a notice (those start at
column 0 with ``[``).
"""

from __future__ import annotations

import time
import zlib

from rich.text import Text

from chatctl.protocol import (
    Error,
    Joined,
    Left,
    Message,
    ServerFrame,
    Shutdown,
    Welcome,
    clean_text,
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

_LEAVE_REASONS = {
    "quit": "left",
    "dropped": "left (connection dropped)",
    "slow_consumer": "was disconnected (too slow to keep up)",
    "ping_timeout": "was disconnected (stopped answering)",
    "frame_too_long": "was disconnected (sent an oversized frame)",
    "too_many_errors": "was disconnected (too many errors)",
}


def name_style(name: str) -> str:
    """A colour per name, the same in every client and every run (crc32, not hash())."""
    return _PALETTE[zlib.crc32(name.lower().encode()) % len(_PALETTE)]


def clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


class ChatLine(Text):
    """A line of the conversation that knows where its head ends (``indent``).

    The head is ``[HH:MM:SS] name: `` or ``[HH:MM:SS] * ``: continuation lines of a
    multi-line message start past it, and so do the rows of a long line that the
    interactive client wraps (``chatctl.ui.wrap``). Pipes print ``plain``, unwrapped.
    """

    indent: int = 0


def _stamp(timestamp: float) -> ChatLine:
    """A line that starts with its dim ``[HH:MM:SS]``.

    The dim is a span on the stamp, not the Text's base style: a base style
    applies to everything appended after it, and dimmed whole messages.
    """
    line = ChatLine()
    line.append(f"[{clock(timestamp)}] ", style="dim")
    return line


def _end_of_head(line: ChatLine, extra: int = 0) -> str:
    """Mark where the head ends (``extra`` characters on); what starts a continuation line."""
    line.indent = len(line.plain) + extra
    return "\n" + " " * line.indent


def message_line(timestamp: float, name: str, text: str, *, own: bool = False) -> ChatLine:
    line = _stamp(timestamp)
    line.append(name, style=f"bold {name_style(name)}" + (" reverse" if own else ""))
    line.append(": ")
    indent = _end_of_head(line)
    line.append(indent.join(text.split("\n")), style="italic" if own else "")
    return line


def notice_line(timestamp: float, text: str, style: str = "dim") -> ChatLine:
    line = _stamp(timestamp)
    _end_of_head(line, len("* "))
    line.append(f"* {text}", style=style)
    return line


def unsent_line(timestamp: float, text: str, *, offline: bool = False) -> ChatLine:
    """``* not sent: <text>``: a line of ours the server never relayed.

    The text is the user's own input, so it is escaped here (a piped line may
    hold anything), and continuation lines are indented like a message's.
    """
    line = _stamp(timestamp)
    line.append("* not sent (offline): " if offline else "* not sent: ", style="red")
    indent = _end_of_head(line)
    line.append(indent.join(clean_text(text).split("\n")), style="red")
    return line


def welcome_line(welcome: Welcome, *, hint: bool = True, again: bool = False) -> ChatLine:
    """The welcome notice; ``again`` after a reconnection."""
    others = [u for u in welcome.users if u.lower() != welcome.name.lower()]
    unnamed = welcome.online - len(others) - 1  # a big room's welcome names only some
    who = ", ".join(others) if others else "nobody else yet"
    if unnamed > 0:
        who = f"{who} and {unnamed} more" if others else f"{unnamed} others"
    verb = "reconnected to" if again else "joined"
    text = f"{verb} {welcome.server} as {welcome.name}; online: {who}."
    if hint:
        text += " Type to chat; exit, /quit or Ctrl-D to leave."
    return notice_line(time.time(), text, style="green")


def render_frame(frame: ServerFrame, me: str) -> ChatLine | None:
    """The line for a frame, or None for frames a person need not see."""
    match frame:
        case Message(time=ts, name=name, text=text):
            return message_line(ts, name, text, own=name.lower() == me.lower())
        case Joined(time=ts, name=name):
            return notice_line(ts, f"{name} joined")
        case Left(time=ts, name=name, reason=reason):
            return notice_line(ts, f"{name} {_LEAVE_REASONS.get(reason, f'left ({reason})')}")
        case Shutdown():
            return notice_line(time.time(), "the server is shutting down", "yellow")
        case Error(code=code, message=message):
            return notice_line(time.time(), f"error: {message} ({code})", "bold red")
        case Welcome():
            return welcome_line(frame)
    return None
