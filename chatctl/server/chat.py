"""What each frame does in the chat: hello, say, join, part, msg, nick, away, the lists.

``protocol.check_allowed`` has already said the frame may be sent now; these
rules look at its content. A refused frame gets an ``error`` that echoes its
``id`` (and its room), and changes nothing; refusing a ``hello`` closes.
Private messages are never logged or reported, even with ``--verbose``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from chatctl.limits import Refusal
from chatctl.protocol import (
    DEFAULT_ROOM,
    SUPPORTED_VERSIONS,
    Away,
    AwayState,
    BansRequest,
    Bye,
    Claim,
    ClientFrame,
    ErrorCode,
    Forget,
    Forgotten,
    Hand,
    HandsRequest,
    Hello,
    HistoryRequest,
    Join,
    LeaveReason,
    MemberInfo,
    Moderate,
    Msg,
    Nick,
    NickChanged,
    Part,
    Ping,
    Pong,
    Private,
    ProtocolError,
    Read,
    RoomInfo,
    RoomsReply,
    RoomsRequest,
    Say,
    SearchRequest,
    StatusRequest,
    Topic,
    UnreadRequest,
    Welcome,
    Whois,
    WhoisReply,
    WhoReply,
    WhoRequest,
    check_away,
    check_name,
    check_room,
    clean_message,
    name_key,
)
from chatctl.server import clustered, moderation, recall
from chatctl.server.bans import SERVER
from chatctl.server.claims import Verdict
from chatctl.server.events import MessageRelayed, Renamed, UserJoined
from chatctl.server.member import Member
from chatctl.server.session import Session

if TYPE_CHECKING:  # the hub imports this module
    from chatctl.server.hub import Hub


def handle(hub: Hub, session: Session, member: Member | None, frame: ClientFrame) -> None:
    """Do what ``frame`` asks; ``member`` is None before a successful ``hello``."""
    try:
        match frame:
            case Say():
                assert member is not None  # noqa: S101  check_allowed: joined
                say(hub, member, frame)
            case Hello():
                _hello(hub, session, frame)
            case StatusRequest(password=password):
                session.greeted()
                refusal = hub.admission.check_password(session.host, password)
                if refusal is not None:
                    _refuse(hub, session, refusal)
                else:
                    _reply(session, member, hub.status())
            case Ping():
                _reply(session, member, Pong())
            case Pong():
                pass
            case Bye():
                session.close(LeaveReason.QUIT)
            case Forget():
                _forget(hub, session, member, frame)
            case _:
                assert member is not None  # noqa: S101  check_allowed: joined, version 2
                _request(hub, member, frame)
    except ProtocolError as exc:
        session.send_error(exc, getattr(frame, "id", None), getattr(frame, "room", None))


def _reply(session: Session, member: Member | None, frame: msgspec.Struct) -> None:
    if member is not None:
        member.tell(frame)  # after the broadcasts queued before it
    else:
        session.tell(frame)


def _refuse(hub: Hub, session: Session, refusal: Refusal) -> None:
    session.refuse(refusal)
    hub.refused(session, refusal.code)


def _hello(hub: Hub, session: Session, hello: Hello) -> None:
    config = hub.config
    if hello.version not in SUPPORTED_VERSIONS:
        versions = " and ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
        message = f"this server speaks protocol versions {versions}"
        return _refuse(hub, session, Refusal(ErrorCode.UNSUPPORTED_VERSION, message))
    refusal = hub.admission.check_password(session.host, hello.password)
    if refusal is not None:  # before the name: who is online is none of a stranger's business
        return _refuse(hub, session, refusal)
    held = hub.member(hello.name)
    # Only a claimed name's owner may take it over: the secret is checked below.
    may_replace = hello.replace and hello.secret is not None and hub.claims is not None
    try:
        check_name(hello.name)
        if held is not None and not may_replace:
            raise ProtocolError(ErrorCode.NAME_TAKEN, "that name is taken")
        rooms = _hello_rooms(hello, config.max_rooms)
    except ProtocolError as exc:
        return _refuse(hub, session, Refusal(exc.code, exc.message))
    verdict = Verdict.FREE
    if hub.claims is not None:  # version 1 too: a claimed name is never free for the taking
        verdict, refusal = _check_claim(hub, session.host, hello.name, hello.secret)
        if refusal is not None:
            return _refuse(hub, session, refusal)
    try:  # after the secret: a banned name says so only to its owner
        for room in (SERVER, *rooms):
            moderation.check_ban(hub, room, name_key(hello.name), session.host)
    except ProtocolError as exc:
        return _refuse(hub, session, Refusal(exc.code, exc.message))
    if held is not None:
        if verdict is not Verdict.OK:  # held, and not claimed: nobody's to take over
            return _refuse(hub, session, Refusal(ErrorCode.NAME_TAKEN, "that name is taken"))
        hub.replace(held, session.address)  # its owner is back: the old connection goes
    if hub.cluster is not None:  # the name is asked of the cluster first
        takeover = hello.replace and verdict is Verdict.OK
        return clustered.hello(
            hub, session, hello, takeover, lambda: _welcome(hub, session, hello, verdict, rooms)
        )
    _welcome(hub, session, hello, verdict, rooms)


def _welcome(hub: Hub, session: Session, hello: Hello, verdict: Verdict, rooms: list[str]) -> None:
    """The name is theirs: welcome, claim, and into their rooms."""
    session.greeted()
    member = Member(session, hello.name, hello.version, time.monotonic(), hello.read_only)
    hub.add_member(member)
    if hello.version >= 2:
        server_id = hub.claims.server_id if hub.claims is not None else None
        member.tell(Welcome(hello.version, hello.name, hub.server_label, server_id))
        _claimed(hub, member, verdict)
    hub.observer(UserJoined(hello.name, session.address))
    for room in rooms:
        hub.enter(member, room, hello.history or 0)


def _check_claim(
    hub: Hub, host: str, name: str, secret: str | None
) -> tuple[Verdict, Refusal | None]:
    """Whether ``name`` may be used with ``secret`` here, and if not, why."""
    assert hub.claims is not None  # noqa: S101  callers check
    server_id = hub.claims.server_id
    if secret is not None:
        throttled = hub.admission.secret_throttled(host)
        if throttled is not None:
            return Verdict.WRONG, throttled
    verdict = hub.claims.check(name, secret)
    if verdict is Verdict.MISSING:
        message = "that name is claimed on this server: it needs the secret its owner was given"
        return verdict, Refusal(ErrorCode.NAME_CLAIMED, message, server_id=server_id)
    if verdict is Verdict.WRONG:
        hub.admission.secret_failed(host)
        message = "that name is claimed on this server, and this is not its secret"
        return verdict, Refusal(ErrorCode.NAME_CLAIMED, message, server_id=server_id)
    return verdict, None


def _claimed(hub: Hub, member: Member, verdict: Verdict) -> None:
    """After a ``hello`` or ``nick``: a free name becomes the member's (they get its secret)."""
    claims = hub.claims
    if claims is None or hub.reader(member) is None:
        return
    now = time.time()
    if verdict is Verdict.FREE:
        secret = claims.claim(member.name, now)
        if secret is not None:
            member.tell(Claim(member.name, secret, claims.server_id))
            if hub.cluster is not None:
                hub.cluster.claimed(member.name, secret, now)
    else:
        claims.used(member.name, now)


def _forget(hub: Hub, session: Session, member: Member | None, frame: Forget) -> None:
    """Drop a claim, proven by its secret (before ``hello`` too, like ``status``)."""
    check_name(frame.name)  # what comes back in ``forgotten`` is a name, nothing else
    if member is None:
        session.greeted()
        refusal = hub.admission.check_password(session.host, frame.password)
        if refusal is not None:
            return _refuse(hub, session, refusal)
    if hub.claims is not None:
        _verdict, refusal = _check_claim(hub, session.host, frame.name, frame.secret)
        if refusal is not None:
            raise ProtocolError(refusal.code, refusal.message)
        if hub.claims.forget(frame.name, frame.secret) and hub.cluster is not None:
            hub.cluster.forgot(frame.name)
    _reply(session, member, Forgotten(frame.name))


def _hello_rooms(hello: Hello, max_rooms: int) -> list[str]:
    """The rooms a hello asks for, canonical and without repeats: ``#lobby`` by default."""
    if hello.version == 1 or hello.rooms is None:
        return [DEFAULT_ROOM]
    rooms = list(dict.fromkeys(check_room(room) for room in hello.rooms))
    if len(rooms) > max_rooms:
        raise ProtocolError(ErrorCode.TOO_MANY_ROOMS, f"at most {max_rooms} rooms at once")
    return rooms


def say(hub: Hub, member: Member, frame: Say) -> None:
    """A message to a room: checked, cleaned, relayed. The hot path: the hub calls it at once."""
    if member.version == 1:  # a version-1 server ignored fields it did not know
        frame = Say(frame.text)
    if member.read_only:
        raise _read_only()
    name = frame.room or DEFAULT_ROOM
    room = member.rooms.get(name)  # as our own client sends it: canonical
    if room is None:
        room = recall.in_room(member, name)
    config = hub.config
    text = clean_message(frame.text, config.max_text_bytes, config.max_text_lines)
    now = time.time()
    if room.restricted:  # the hot path pays one test for moderation
        moderation.check_voice(hub, room, member, now)
    if hub.cluster is not None:
        hub.cluster.check_open()  # Redis away too long: refused, not held without end
    member.said(member.session.last_heard)
    hub.count_message()
    room.say(member, text, now, frame.id, frame.action)
    if config.report_messages:
        hub.observer(MessageRelayed(member.name, text, room.name, frame.action))


def _read_only() -> ProtocolError:
    """What a ``read_only`` connection gets for anything that would speak or act."""
    return ProtocolError(
        ErrorCode.READ_ONLY, "this connection is read-only (join --read-only): it cannot send"
    )


_SPEAKING = (Msg, Nick, Topic, Moderate, Hand)


def _request(hub: Hub, member: Member, frame: ClientFrame) -> None:
    """The version-2 requests."""
    if member.read_only and isinstance(frame, _SPEAKING):
        raise _read_only()
    match frame:
        case Join(room=name, history=history):
            name = check_room(name)
            if name in member.rooms:
                raise ProtocolError(ErrorCode.ALREADY_IN_ROOM, "you are in that room already")
            if len(member.rooms) >= hub.config.max_rooms:
                raise ProtocolError(
                    ErrorCode.TOO_MANY_ROOMS, f"at most {hub.config.max_rooms} rooms at once"
                )
            moderation.check_ban(hub, name, member.key, member.session.host)
            hub.enter(member, name, history or 0)
        case Part(room=name):
            hub.part(member, recall.in_room(member, name))
        case Read(room=name, seq=seq):
            hub.read(member, recall.in_room(member, name), seq)
        case HistoryRequest():
            recall.history(hub, member, frame)
        case SearchRequest():
            recall.search(hub, member, frame)
        case UnreadRequest(id=id):
            recall.unread(hub, member, id)
        case Msg():
            _private(hub, member, frame)
        case Nick():
            _nick(hub, member, frame)
        case Topic():
            moderation.topic(hub, member, frame)
        case Moderate():
            moderation.moderate(hub, member, frame)
        case Hand():
            moderation.hand(hub, member, frame)
        case HandsRequest():
            moderation.hands(hub, member, frame)
        case BansRequest():
            moderation.bans(hub, member, frame)
        case Away(text=text, id=id):
            member.set_away(check_away(text))
            member.tell(AwayState(member.name, member.away, id))
            if hub.cluster is not None:
                hub.cluster.away(member)
        case RoomsRequest(id=id):
            rooms = [
                RoomInfo(r.name, r.roster()[1], r.topic, r.moderated) for r in hub.rooms.values()
            ]
            if hub.cluster is not None:
                rooms += clustered.other_rooms(hub, hub.cluster)
            member.tell(RoomsReply(rooms, id))
        case WhoRequest(room=name, id=id):
            name = check_room(name)
            there = hub.rooms.get(name)  # anyone may ask; a room nobody is in is empty
            users = []
            if there is not None:
                op = moderation.is_operator
                users = [MemberInfo(m.name, m.away, op(hub, there, m)) for m in there.members]
            if hub.cluster is not None:
                users += clustered.others_in(hub.cluster, name)
            member.tell(WhoReply(name, users, id))
        case Whois(name=name, id=id):
            target = hub.member(name)
            if target is None and hub.cluster is not None:
                return member.tell(clustered.whois(hub.cluster, name, id))
            if target is None:
                raise ProtocolError(ErrorCode.NO_SUCH_USER, "nobody of that name is online")
            member.tell(WhoisReply(target.name, list(target.rooms), target.away, id))


def _private(hub: Hub, member: Member, msg: Msg) -> None:
    target = hub.member(msg.to)
    if target is None and hub.cluster is not None:
        return clustered.private(hub, hub.cluster, member, msg)
    if target is None:
        raise ProtocolError(ErrorCode.NO_SUCH_USER, "nobody of that name is online")
    if target.version < 2:
        raise ProtocolError(
            ErrorCode.PRIVATE_UNSUPPORTED,
            f"{target.name}'s client speaks protocol version 1: no private messages",
        )
    config = hub.config
    text = clean_message(msg.text, config.max_text_bytes, config.max_text_lines)
    member.said(member.session.last_heard)
    private = Private(time.time(), member.name, target.name, text, msg.id, msg.action)
    _keep_private(hub, member, target, private)
    if target is not member:
        target.tell(private)
    if target.away is not None:
        private = Private(
            private.time, member.name, target.name, text, msg.id, msg.action, target.away
        )
    member.tell(private)


def _keep_private(hub: Hub, member: Member, target: Member, private: Private) -> None:
    """Between two claimed names only (committed before either sees it)."""
    if hub.history is None or not hub.config.private_history:
        return
    mine, theirs = hub.reader(member), hub.reader(target)
    if mine is not None and theirs is not None:
        hub.history.add_private(private, (mine, theirs))


def _nick(hub: Hub, member: Member, nick: Nick) -> None:
    new = check_name(nick.name)
    holder = hub.member(new)
    if holder is not None and holder is not member:
        raise ProtocolError(ErrorCode.NAME_TAKEN, "that name is taken")
    old = member.name
    if new == old:
        return
    verdict = Verdict.OK  # a new spelling of one's own name (alice -> Alice) stays claimed
    if hub.claims is not None and holder is not member:
        verdict, refusal = _check_claim(hub, member.session.host, new, nick.secret)
        if refusal is not None:
            raise ProtocolError(refusal.code, refusal.message)
    if hub.cluster is not None:
        return clustered.nick(
            hub, hub.cluster, member, new, lambda: _renamed(hub, member, old, new, verdict)
        )
    _renamed(hub, member, old, new, verdict)


def _renamed(hub: Hub, member: Member, old: str, new: str, verdict: Verdict) -> None:
    hub.rename_member(member, new)
    _claimed(hub, member, verdict)
    now = time.time()
    told = [room for room in member.rooms.values() if room.rename(member, old, now)]
    if hub.cluster is not None:  # the rooms are told when the cluster answers
        told = list(member.rooms.values())
    # In no room, or only in big ones, or an IRC client's: the answer comes to you alone.
    if not told or member.dialect.hides_own_presence:
        member.tell(NickChanged(now, old, new))
    hub.tell_once(told, NickChanged(now, old, new), member)
    hub.observer(Renamed(old, new))
