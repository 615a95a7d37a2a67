"""What operators do in a room, and who may not speak or come in.

Every action is a room event: a ``message`` with ``event`` set, in the operator's
name, as an action ("* teacher kicked bob (spam)"), so that a client that knows
nothing of moderation still shows the room what happened. It takes the room's
``seq``, is kept in history, goes to the server log and to ``status``: nothing an
operator does is silent. A refused action changes nothing and only the one who
asked is told, with a code (``not_operator``, ``protected``, ``no_such_user``).
Raised hands are the exception: only the room's operators and the one raising see them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatctl.durations import say_duration
from chatctl.limits import is_loopback
from chatctl.protocol import (
    BANNED,
    KICKED,
    BansReply,
    BansRequest,
    Do,
    ErrorCode,
    Hand,
    HandsReply,
    HandsRequest,
    HandState,
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
from chatctl.server.backplane.ops import Banned, Kicked, Op, Ruled, Unbanned
from chatctl.server.bans import SERVER, Ban, Network, parse_network
from chatctl.server.events import Moderated
from chatctl.server.member import Member
from chatctl.server.room import Room

if TYPE_CHECKING:  # the hub imports the chat rules, which import this module
    from chatctl.server.hub import Hub

#: What nobody may do to a server operator.
_AGAINST_SERVER_OPERATORS = frozenset({Do.KICK, Do.MUTE, Do.DEOP, Do.BAN, Do.DEVOICE})
#: What needs no one to do it to.
_ROOM_WIDE = frozenset({Do.MODERATE, Do.UNMODERATE})
#: What needs its target here.
_PRESENT = frozenset({Do.KICK, Do.MUTE, Do.OP, Do.VOICE})


def is_operator(hub: Hub, room: Room, member: Member) -> bool:
    """Whether ``member`` may moderate ``room``: its operator, or the server's."""
    return member.key in room.operators or member.key in hub.operators


def check_voice(hub: Hub, room: Room, member: Member, now: float) -> None:
    """Refuse a line from someone muted in ``room`` (``muted``), or not voiced in a
    moderated room (``moderated``); called only when the room is ``restricted``."""
    if room.silenced(member.key, now):
        until = room.muted.get(member.key)
        left = f" for {say_duration(until - now)} more" if until is not None else ""
        raise ProtocolError(
            ErrorCode.MUTED, f"you are muted in {room.name}{left}: your line was not sent"
        )
    if room.moderated and member.key not in room.voiced and not is_operator(hub, room, member):
        raise ProtocolError(
            ErrorCode.MODERATED,
            f"{room.name} is moderated: only operators and those they voice speak; "
            "/hand raises your hand",
        )


def check_ban(hub: Hub, room: str, key: str, host: str) -> None:
    """Refuse ``key`` from ``host`` coming into ``room`` (SERVER: onto the server)."""
    if key in hub.operators:
        return
    now = time.time()
    ban = hub.bans.find(room, key, host, now)
    if ban is None:
        return
    where = "this server" if room == SERVER else room
    left = f" for {say_duration(ban.until - now)} more" if ban.until is not None else ""
    why = f": {ban.reason}" if ban.reason else ""
    raise ProtocolError(ErrorCode.BANNED, f"you are banned from {where}{left} (by {ban.by}{why})")


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
    reason = check_reason(frame.reason)
    do = frame.do
    if do in _ROOM_WIDE:
        rule(room, do, "", None)
        _shared(hub, Ruled(room.name, str(do), ""), member.key)
        said = "moderated the room" if do is Do.MODERATE else "ended the moderation"
        return _tell(hub, room, member, str(do), None, _with(said, reason), frame.id)
    name = frame.name
    if name is None and do is Do.VOICE and room.hands:
        name = next(iter(room.hands.values()))  # the first raised hand
    if name is None:
        if do is Do.VOICE:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"no hand is up in {room.name}")
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"{do} needs a name")
    if do in (Do.BAN, Do.UNBAN):
        return _ban(hub, room, member, frame, name, reason)
    key = name_key(check_name(name))
    target = _here(hub, room, key)
    remote = _elsewhere(hub, room, key) if target is None else None
    _check_target(hub, room, do, key, name, target or remote)
    shown = target.name if target is not None else remote or name
    until = time.time() + frame.seconds if frame.seconds is not None else None
    if do is not Do.KICK:
        rule(room, do, key, until)
        _shared(hub, Ruled(room.name, str(do), key, until), key)
    said = _with(_SAID[do].format(shown) + (_for(frame.seconds) if do is Do.MUTE else ""), reason)
    _tell(hub, room, member, str(do), shown, said, frame.id)
    if do is Do.KICK and target is not None:
        _put_out(hub, room, target, ErrorCode.KICKED, KICKED, f"{member.name} {said}")
    elif do is Do.KICK:
        _shared(hub, Kicked(room.name, shown, f"{member.name} {said}"), key)


_SAID = {
    Do.KICK: "kicked {}",
    Do.MUTE: "muted {}",
    Do.UNMUTE: "unmuted {}",
    Do.OP: "made {} an operator",
    Do.DEOP: "took operator away from {}",
    Do.VOICE: "gave {} a voice",
    Do.DEVOICE: "took {}'s voice away",
}


_RULES = frozenset(str(do) for do in Do) - {str(Do.KICK), str(Do.BAN), str(Do.UNBAN)}


def rule(room: Room, do: Do, key: str, until: float | None) -> None:
    """An operator's rule takes effect in ``room`` (here, or read from the cluster)."""
    match do:
        case Do.MODERATE | Do.UNMODERATE:
            room.moderate(do is Do.MODERATE)
        case Do.MUTE:
            room.mute(key, until)
        case Do.UNMUTE:
            room.unmute(key)
        case Do.OP | Do.DEOP:
            room.set_operator(key, do is Do.OP)
        case Do.VOICE | Do.DEVOICE:
            room.voice(key, do is Do.VOICE)


def applied(hub: Hub, op: Op) -> None:
    """A moderation op of another server, read from the stream: the same here."""
    match op:
        case Banned():
            network = parse_network(op.network) if op.network is not None else None
            ban = Ban(op.room, op.key, network, op.until, op.by, op.reason, op.shown)
            hub.bans.add(ban)
            target = hub.members.get(op.key) if op.key is not None else None
            if target is not None:
                _enforce(hub, ban, target, op.said)
        case Unbanned():
            hub.bans.lift(op.room, op.shown)
        case Kicked():
            room = hub.rooms.get(op.room)
            target = _here(hub, room, name_key(op.name)) if room is not None else None
            if room is not None and target is not None:
                _put_out(hub, room, target, ErrorCode.KICKED, KICKED, op.said)
        case Ruled(do=do) if do in _RULES:  # (a rule of a newer chatctl: not ours)
            room = hub.rooms.get(op.room)
            if room is not None:
                rule(room, Do(do), op.key, op.until)


def _shared(hub: Hub, op: Op, key: str) -> None:
    """On a cluster, every server does the same (bans, rules) or the target's does (kick)."""
    if hub.cluster is not None:
        hub.cluster.publish(op, key)


def _elsewhere(hub: Hub, room: Room, key: str) -> str | None:
    """The name of ``key`` if they are in ``room`` on another server of the cluster."""
    cluster = hub.cluster
    if cluster is None:
        return None
    entry = cluster.presence.rooms.get(room.name, {}).get(key)
    return entry[0] if entry is not None and entry[1] != cluster.origin else None


def _here(hub: Hub, room: Room, key: str) -> Member | None:
    """The member called ``key`` if they are in ``room`` (by name, not a scan of the room)."""
    member = hub.members.get(key)
    return member if member is not None and member.rooms.get(room.name) is room else None


def _check_target(
    hub: Hub, room: Room, do: Do, key: str, name: str, target: Member | str | None
) -> None:
    """``target``: the member here, or the name of one in the room on another server."""
    if key in hub.operators and do in _AGAINST_SERVER_OPERATORS:
        raise ProtocolError(
            ErrorCode.PROTECTED,
            f"{name} is an operator of the whole server: no one can {do} them",
        )
    if do in _PRESENT and target is None:
        raise ProtocolError(ErrorCode.NO_SUCH_USER, f"nobody called {name} is in {room.name}")


def _ban(
    hub: Hub, room: Room, member: Member, frame: Moderate, name: str, reason: str | None
) -> None:
    """``ban``/``unban`` of a name (and, if they are here, their address) or a network,
    in ``room`` or (``server``, server operators only) on the whole server."""
    if frame.server and member.key not in hub.operators:
        raise ProtocolError(ErrorCode.NOT_OPERATOR, "only a server operator can ban from it")
    where = SERVER if frame.server else room.name
    network = parse_network(name)
    key = None if network is not None else name_key(check_name(name))
    scope = " from the server" if frame.server else ""
    if frame.do is Do.UNBAN:
        if not hub.bans.lift(where, name):
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"{name} is not banned here")
        _shared(hub, Unbanned(where, name), member.key)
        return _tell(
            hub, room, member, "unban", name, _with(f"unbanned {name}{scope}", reason), frame.id
        )
    if key is not None:
        _check_target(hub, room, Do.BAN, key, name, None)
    target = hub.members.get(key) if key is not None else None
    if target is not None and network is None:
        network = _address_of(hub, target)
    remote = _elsewhere(hub, room, key) if target is None and key is not None else None
    shown = target.name if target is not None else remote or name
    until = time.time() + frame.seconds if frame.seconds is not None else None
    ban = Ban(where, key, network, until, member.name, reason, shown)
    hub.bans.add(ban)
    said = _with(f"banned {shown}{scope}" + _for(frame.seconds), reason)
    _tell(hub, room, member, "ban", shown, said, frame.id)
    text = f"{member.name} {said}"
    net = str(network) if network is not None else None
    _shared(hub, Banned(where, key, net, until, member.name, reason, shown, text), key or "")
    if target is not None:
        _enforce(hub, ban, target, text)


def _enforce(hub: Hub, ban: Ban, target: Member, said: str) -> None:
    """``target``, here, is covered by ``ban``: out of the server, or of its room."""
    if ban.room == SERVER:
        why = f"you are banned from this server (by {ban.by}" + (
            f": {ban.reason})" if ban.reason else ")"
        )
        hub.dismiss(target, ProtocolError(ErrorCode.BANNED, why))
        return
    room = target.rooms.get(ban.room)
    if room is not None:
        _put_out(hub, room, target, ErrorCode.BANNED, BANNED, said)


def _put_out(hub: Hub, room: Room, target: Member, code: ErrorCode, why: str, said: str) -> None:
    """``target`` leaves ``room``, after the event that says why. A version-1 client has
    no other room and no ``join``: its connection is closed instead, with the event's words."""
    if target.version == 1:
        hub.dismiss(target, ProtocolError(code, said))
    else:
        hub.part(target, room, why)


def _address_of(hub: Hub, member: Member) -> Network | None:
    """The address to ban with ``member``'s name: theirs, unless it is loopback (a shared
    machine's, everyone's) and the server does not limit loopback."""
    host = member.session.host
    if is_loopback(host) and not hub.config.limit_loopback:
        return None
    return parse_network(host)


def hand(hub: Hub, member: Member, frame: Hand) -> None:
    room = recall.in_room(member, frame.room)
    if not room.moderated and not frame.down:
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"{room.name} is not moderated: just speak")
    position = room.raise_hand(member, not frame.down)
    state = HandState(room.name, member.name, position, frame.down, frame.id)
    member.tell(state)
    keys = room.operators.union(name_key(n) for n in hub.operators.names)
    for key in keys - {member.key}:  # the operators here, not a scan of the whole room
        operator = _here(hub, room, key)
        if operator is not None:
            operator.tell(state)


def hands(hub: Hub, member: Member, frame: HandsRequest) -> None:
    room = recall.in_room(member, frame.room)
    _check_operator(hub, room, member)
    member.tell(HandsReply(room.name, list(room.hands.values()), frame.id))


def bans(hub: Hub, member: Member, frame: BansRequest) -> None:
    room = recall.in_room(member, frame.room)
    _check_operator(hub, room, member)
    now = time.time()
    listed = hub.bans.of(room.name, now)
    if member.key in hub.operators:
        listed += hub.bans.of(SERVER, now)
    member.tell(BansReply(room.name, [b.info() for b in listed], frame.id))


def _check_operator(hub: Hub, room: Room, member: Member) -> None:
    if not is_operator(hub, room, member):
        raise ProtocolError(ErrorCode.NOT_OPERATOR, f"only an operator of {room.name} can do that")


def _for(seconds: int | None) -> str:
    return f" for {say_duration(seconds)}" if seconds is not None else ""


def _with(said: str, reason: str | None) -> str:
    return f"{said} ({reason})" if reason is not None else said


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
    room.announce(member.name, event, target, said, now, id)
    hub.operators.done(Moderation(now, room.name, member.name, event, target, said))
    hub.observer(Moderated(room.name, member.name, event, said))
