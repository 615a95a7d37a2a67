"""Slash commands: what a typed line means, before anything is sent. Pure, no I/O.

A line starting with ``/`` is a command; ``//`` sends the rest as text starting
with one ``/``. An unknown command or a bad argument is a ``Mistake``: the UI
says so and sends nothing, ever (``/msg bob hi`` must never reach the room).
The table ``COMMANDS`` is the one place a command is named: parsing, ``/help``
and Tab completion read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatctl.modcommands import (
    MODERATION_SPECS,
    MODERATION_WORDS,
    Moderate,
    RaiseHand,
    SetTopic,
    ShowBans,
    ShowHands,
    Spec,
    Usage,
    moderation_command,
)
from chatctl.protocol import ProtocolError, check_name, check_room
from chatctl.wirelimits import MAX_HISTORY

#: Words that leave, as the line itself (the classroom origin's ``exit``, and ``/quit``).
QUIT_WORDS = frozenset({"exit", "/quit"})


@dataclass(frozen=True)
class Text:
    """Send ``text`` to the current room."""

    text: str


@dataclass(frozen=True)
class Action:
    """``/me waves``."""

    text: str


@dataclass(frozen=True)
class JoinRoom:
    room: str


@dataclass(frozen=True)
class PartRoom:
    """``room`` None: the current one."""

    room: str | None


@dataclass(frozen=True)
class ListRooms:
    pass


@dataclass(frozen=True)
class Who:
    room: str | None


@dataclass(frozen=True)
class Whois:
    name: str


@dataclass(frozen=True)
class Private:
    to: str
    text: str


@dataclass(frozen=True)
class Reply:
    """A private message to whoever last sent us one."""

    text: str


@dataclass(frozen=True)
class ChangeNick:
    name: str


@dataclass(frozen=True)
class SetAway:
    """``text`` None: back."""

    text: str | None


@dataclass(frozen=True)
class SwitchRoom:
    room: str


@dataclass(frozen=True)
class ShowHistory:
    """Older messages of the room you type into, before the oldest one shown; with
    ``name``: your last private messages with them."""

    count: int
    name: str | None = None


@dataclass(frozen=True)
class Search:
    words: str


@dataclass(frozen=True)
class ShowUnread:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Mistake:
    """Not a command we can run; ``message`` says why. Nothing is sent."""

    message: str


Command = (
    Text
    | Action
    | JoinRoom
    | PartRoom
    | ListRooms
    | Who
    | Whois
    | Private
    | Reply
    | ChangeNick
    | SetAway
    | SwitchRoom
    | ShowHistory
    | Search
    | ShowUnread
    | SetTopic
    | Moderate
    | RaiseHand
    | ShowHands
    | ShowBans
    | Help
    | Quit
    | Mistake
)


COMMANDS: tuple[Spec, ...] = (
    Spec("join", "/join ROOM", "enter a room (made if new) and type into it", "room"),
    Spec("part", "/part [ROOM]", "leave a room (default: the one you type into)", "room"),
    Spec("switch", "/switch ROOM", "type into another of your rooms (also Alt-1..9)", "room"),
    Spec("rooms", "/rooms", "list the server's rooms"),
    Spec("who", "/who [ROOM]", "list who is in a room", "room"),
    Spec("whois", "/whois NAME", "whether NAME is online, in which rooms, away or not", "name"),
    Spec("msg", "/msg NAME TEXT", "a private message, to NAME only", "name"),
    Spec("reply", "/reply TEXT", "a private message to whoever last sent you one"),
    Spec("me", "/me ACTION", "an action, shown as '* NAME ACTION'"),
    Spec("nick", "/nick NEW", "change your name"),
    Spec("away", "/away [TEXT]", "mark yourself away; without TEXT: back"),
    Spec("history", "/history [NAME] [N]", "N older messages here, or with NAME (20)", "name"),
    Spec("search", "/search WORDS", "messages with all of WORDS, in your rooms and PMs"),
    Spec("unread", "/unread", "rooms with messages new since you read them"),
    *MODERATION_SPECS,
    Spec("help", "/help", "this list"),
    Spec("quit", "/quit", "leave (also exit, Ctrl-D, Ctrl-C on an empty line)"),
)
NAMES = tuple(spec.name for spec in COMMANDS)


def parse(line: str) -> Command:
    """What a line typed at the prompt (or piped with ``--commands``) asks for."""
    stripped = line.strip()
    if stripped in QUIT_WORDS:
        return Quit()
    if not stripped.startswith("/"):
        return Text(line)
    if stripped.startswith("//"):
        return Text(line.lstrip()[1:])
    word, _, rest = stripped[1:].partition(" ")
    rest = rest.strip()
    try:
        return _command(word.lower(), rest)
    except ProtocolError as exc:
        return Mistake(exc.message)
    except Usage as usage:
        return Mistake(f"usage: {usage}")


def _command(word: str, rest: str) -> Command:
    match word:
        case "join" | "j":
            return JoinRoom(_room(rest, "/join ROOM"))
        case "part" | "leave":
            return PartRoom(_room(rest, "") if rest else None)
        case "switch" | "s":
            return SwitchRoom(_room(rest, "/switch ROOM"))
        case "rooms" | "list":
            return ListRooms()
        case "who" | "names":
            return Who(_room(rest, "") if rest else None)
        case "whois":
            return Whois(check_name(rest.lstrip("@"))) if rest else Mistake("usage: /whois NAME")
        case "msg" | "m" | "query":
            to, _, text = rest.partition(" ")
            if not to or not text.strip():
                raise Usage("/msg NAME TEXT")
            return Private(check_name(to), text.strip())
        case "reply" | "r":
            return Reply(rest) if rest else Mistake("usage: /reply TEXT")
        case "me":
            return Action(rest) if rest else Mistake("usage: /me ACTION")
        case "nick":
            return ChangeNick(check_name(rest)) if rest else Mistake("usage: /nick NEW")
        case "away":
            return SetAway(rest or None)
        case "history":
            first, _, count = rest.partition(" ")
            if first and not first.isdigit():  # a name (all-digit names: /history N only)
                return ShowHistory(_count(count.strip()), check_name(first.lstrip("@")))
            return ShowHistory(_count(rest))
        case "search" | "find":
            return Search(rest) if rest else Mistake("usage: /search WORDS")
        case "unread":
            return ShowUnread()
        case word if word in MODERATION_WORDS:
            return moderation_command(word, rest)
        case "help" | "h" | "?":
            return Help()
        case "quit" | "exit" | "q":
            return Quit()
    return Mistake(f"unknown command /{word} (/help lists them; // sends a line starting /)")


def _count(text: str) -> int:
    """``/history``'s N: 1 to MAX_HISTORY, default 20."""
    if not text:
        return 20
    if not text.isdigit() or not 1 <= int(text) <= MAX_HISTORY:
        raise Usage(f"/history [NAME] [N], N from 1 to {MAX_HISTORY}")
    return int(text)


def _room(text: str, usage: str) -> str:
    """A room as typed: ``#ops`` or ``ops``; canonical."""
    if not text:
        raise Usage(usage)
    return room_arg(text.split()[0])


def room_arg(text: str) -> str:
    """``--room ops`` or ``--room '#ops'``: the canonical room; raises ProtocolError."""
    return check_room(text if text.startswith("#") else f"#{text}")


def help_lines() -> list[str]:
    width = max(len(spec.usage) for spec in COMMANDS)
    return [f"{spec.usage:<{width}}  {spec.help}" for spec in COMMANDS] + [
        f"{'//TEXT':<{width}}  send TEXT starting with one /",
    ]
