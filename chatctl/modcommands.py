"""The operators' slash commands, parsed: ``/topic``, ``/kick``, ``/mute``, ``/ban`` ...

Pure, no I/O, like ``chatctl.commands`` (which hands these words here and lists
``MODERATION_SPECS`` in ``/help``). Each acts on the room the user types into.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatctl.durations import parse_duration
from chatctl.protocol import MAX_MUTE_SECONDS, Do, check_name, check_reason, check_topic


class Usage(Exception):
    """A command without the argument it needs; the text is its usage."""


@dataclass(frozen=True)
class Spec:
    name: str
    usage: str
    help: str
    #: What Tab completes for the first argument: "room", "name" or "".
    completes: str = ""


@dataclass(frozen=True)
class SetTopic:
    """``text`` None: show the topic; ``clear``: remove it."""

    text: str | None
    clear: bool = False


@dataclass(frozen=True)
class Moderate:
    """An operator's action in the room typed into; ``name`` None: on the room itself
    (``/moderate``), or the first raised hand (``/voice``)."""

    do: Do
    name: str | None
    reason: str | None = None
    seconds: int | None = None
    server: bool = False


@dataclass(frozen=True)
class RaiseHand:
    down: bool = False


@dataclass(frozen=True)
class ShowHands:
    pass


@dataclass(frozen=True)
class ShowBans:
    pass


MODERATION_SPECS: tuple[Spec, ...] = (
    Spec("topic", "/topic [TEXT]", "show the room's topic; operators: set it (- clears it)"),
    Spec("hand", "/hand [down]", "in a moderated room: raise (or lower) your hand"),
    Spec("kick", "/kick NAME [REASON]", "operators: put NAME out of the room", "name"),
    Spec("mute", "/mute NAME [10m] [REASON]", "operators: NAME may not speak here", "name"),
    Spec("unmute", "/unmute NAME", "operators: NAME may speak again", "name"),
    Spec(
        "ban", "/ban [-s] NAME|CIDR [10m] [REASON]", "operators: keep out (-s: the server)", "name"
    ),
    Spec("unban", "/unban [-s] NAME|CIDR", "operators: lift a ban"),
    Spec("bans", "/bans", "operators: the room's bans"),
    Spec("op", "/op NAME", "operators: make NAME an operator of the room", "name"),
    Spec("deop", "/deop NAME", "operators: NAME is no longer one", "name"),
    Spec("moderate", "/moderate", "operators: only operators and the voiced speak"),
    Spec("unmoderate", "/unmoderate", "operators: everyone speaks again"),
    Spec("voice", "/voice [NAME]", "operators: NAME (or the first hand up) may speak", "name"),
    Spec("devoice", "/devoice NAME", "operators: NAME's voice goes", "name"),
    Spec("hands", "/hands", "operators: the raised hands, first first"),
)
MODERATION_WORDS = frozenset(spec.name for spec in MODERATION_SPECS)
_USAGE = {spec.name: spec.usage.replace("[10m]", "[DURATION]") for spec in MODERATION_SPECS}
#: Commands whose second word may be a duration.
_TIMED = frozenset({Do.MUTE, Do.BAN})


def moderation_command(
    word: str, rest: str
) -> SetTopic | Moderate | RaiseHand | ShowHands | ShowBans:
    """The command ``/WORD REST``, for a ``word`` in ``MODERATION_WORDS``; raises Usage
    or ProtocolError (a bad name, a reason too long)."""
    match word:
        case "topic":
            if rest == "-":
                return SetTopic(None, clear=True)
            return SetTopic(check_topic(rest) if rest else None)
        case "hand":
            if rest not in ("", "down", "up"):
                raise Usage(_USAGE[word])
            return RaiseHand(down=rest == "down")
        case "hands":
            return ShowHands()
        case "bans":
            return ShowBans()
        case "moderate" | "unmoderate":
            return Moderate(Do(word), None, check_reason(rest))
        case "voice" if not rest:
            return Moderate(Do.VOICE, None)
    return _on_someone(Do(word), rest)


def _on_someone(do: Do, rest: str) -> Moderate:
    """``/kick bob spam``, ``/mute bob 10m flooding``, ``/ban -s 10.0.0.0/24 1h``: the
    target, then (mute, ban) a duration if the next word is one, then the reason."""
    server = False
    if do in (Do.BAN, Do.UNBAN) and rest.startswith("-s "):
        server, rest = True, rest[3:].lstrip()
    target, _, reason = rest.partition(" ")
    if not target:
        raise Usage(_USAGE[do])
    reason = reason.strip()
    seconds = None
    if do in _TIMED and reason:
        first, _, after = reason.partition(" ")
        try:
            seconds = max(1, round(parse_duration(first)))
        except ValueError:
            pass  # not a duration: all of it is the reason
        else:
            reason = after.strip()
            if seconds > MAX_MUTE_SECONDS:
                raise Usage(f"{_USAGE[do]}, at most a year")
    target = target.lstrip("@")
    if do not in (Do.BAN, Do.UNBAN) or not _looks_like_address(target):
        target = check_name(target)
    return Moderate(do, target, check_reason(reason), seconds, server)


def _looks_like_address(text: str) -> bool:
    """``10.0.0.7``, ``10.0.0.0/24``, ``fe80::1``: an address, not a name (the server
    decides; this only spares a name check)."""
    return "/" in text or ":" in text or text.replace(".", "").isdigit()
