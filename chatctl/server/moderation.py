"""What operators do in a room: topic, kick, mute, unmute, op, deop; and who is muted.

Every action is a room event: a ``message`` with ``event`` set, in the operator's
name, as an action ("* teacher kicked bob (spam)"), so that a client that knows
nothing of moderation still shows the room what happened. It takes the room's
``seq``, is kept in history, goes to the server log and to ``status``: nothing an
operator does is silent. A refused action changes nothing and only the one who
asked is told, with a code (``not_operator``, ``protected``, ``no_such_user``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatctl.durations import say_duration
from chatctl.protocol import (
    KICKED,
    Do,
    ErrorCode,
    Moderate,
    Moderation,
    ProtocolError,
    Topic,
    check_name,
    check_reason,
    check_topic,
    name_key,
)
from chatctl.server import recall
from chatctl.server.events import Moderated
from chatctl.server.member import Member
from chatctl.server.room import Room

if TYPE_CHECKING:  # the hub imports the chat rules, which import this module
    from chatctl.server.hub import Hub

#: What a room operator may not do to a server operator.
_AGAINST_SERVER_OPERATORS = frozenset({Do.KICK, Do.MUTE, Do.DEOP})


def is_operator(hub: Hub, room: Room, member: Member) -> bool:
    """Whether ``member`` may moderate ``room``: its operator, or the server's."""
    return member.key in room.operators or member.key in hub.operators


def check_voice(room: Room, member: Member, now: float) -> None:
    """Refuse a line from someone muted in ``room`` (``muted``); the hot path's one test."""
    if room.muted and room.silenced(member.key, now):
        until = room.muted.get(member.key)
        left = f" for {say_duration(until - now)} more" if until is not None else ""
        raise ProtocolError(
            ErrorCode.MUTED, f"you are muted in {room.name}{left}: your line was not sent"
        )


def topic(hub: Hub, member: Member, frame: Topic) -> None:
    room = recall.in_room(member, frame.room)
    _check_operator(hub, room, member)
    text = check_topic(frame.text)
    room.set_topic(text)
    said = f"set the topic: {text}" if text is not None else "cleared the topic"
    _tell(hub, room, member, "topic", None, said, frame.id)


def moderate(hub: Hub, member: Member, frame: Moderate) -> None:
    room = recall.in_room(member, frame.room)
    _check_operator(hub, room, member)
    key = name_key(check_name(frame.name))
    reason = check_reason(frame.reason)
    do = frame.do
    if key in hub.operators and do in _AGAINST_SERVER_OPERATORS:
        raise ProtocolError(
            ErrorCode.PROTECTED,
            f"{frame.name} is an operator of the whole server: no one can {do} them here",
        )
    target = next((m for m in room.members if m.key == key), None)
    if target is None and do in (Do.KICK, Do.MUTE, Do.OP):
        raise ProtocolError(ErrorCode.NO_SUCH_USER, f"nobody called {frame.name} is in {room.name}")
    name = target.name if target is not None else frame.name
    now = time.time()
    match do:
        case Do.KICK:
            said = f"kicked {name}"
        case Do.MUTE:
            until = now + frame.seconds if frame.seconds is not None else None
            room.mute(key, until)
            said = f"muted {name}"
            if frame.seconds is not None:
                said += f" for {say_duration(frame.seconds)}"
        case Do.UNMUTE:
            room.unmute(key)
            said = f"unmuted {name}"
        case Do.OP:
            room.set_operator(key, True)
            said = f"made {name} an operator"
        case Do.DEOP:
            room.set_operator(key, False)
            said = f"took operator away from {name}"
    if reason is not None:
        said += f" ({reason})"
    _tell(hub, room, member, str(do), name, said, frame.id)
    if do is Do.KICK and target is not None:
        hub.part(target, room, KICKED)  # after the kick, so they learn why they are out


def _check_operator(hub: Hub, room: Room, member: Member) -> None:
    if not is_operator(hub, room, member):
        raise ProtocolError(
            ErrorCode.NOT_OPERATOR, f"only an operator of {room.name} can do that"
        )


def _tell(
    hub: Hub,
    room: Room,
    member: Member,
    event: str,
    target: str | None,
    said: str,
    id: str | None,
) -> None:
    now = time.time()
    room.moderated(member.name, event, target, said, now, id)
    hub.operators.done(Moderation(now, room.name, member.name, event, target, said))
    hub.observer(Moderated(room.name, member.name, event, said))
