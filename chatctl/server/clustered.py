"""The chat rules that differ in a cluster (``serve --backplane``).

A name is the cluster's to give: a hello or a nick waits for the stream's word
on it (frames sent meanwhile wait too). Private messages find their recipient on
any server; the lists (``who``, ``rooms``, ``whois``) show the people on the
other servers too, with which server they are on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatctl.limits import Refusal
from chatctl.protocol import (
    ErrorCode,
    Hello,
    MemberInfo,
    Msg,
    Private,
    ProtocolError,
    RoomInfo,
    WhoisReply,
    clean_message,
    name_key,
)
from chatctl.server.member import Member
from chatctl.server.session import Session

if TYPE_CHECKING:
    from chatctl.server.cluster import Cluster
    from chatctl.server.hub import Hub

_TAKEN = "that name is taken (on another server of this cluster)"


def hello(
    hub: Hub, session: Session, frame: Hello, takeover: bool, welcome: Callable[[], None]
) -> None:
    """Ask the cluster for the name; ``welcome`` when it is ours. ``takeover``: the
    claim's secret was given, with ``replace``: the name is taken from wherever it is."""
    cluster = hub.cluster
    assert cluster is not None  # noqa: S101  callers check
    if not cluster.up:
        session.refuse(Refusal(ErrorCode.BACKPLANE_DOWN, _down()))
        hub.refused(session, ErrorCode.BACKPLANE_DOWN)
        return
    hub.hold(session)

    def answered(ours: bool) -> None:
        waiting = hub.release(session)
        if waiting is None:  # gone meanwhile: the name is free again
            if ours:
                cluster.offline_name(frame.name)
            return
        if not ours or hub.member(frame.name) is not None:
            session.refuse(Refusal(ErrorCode.NAME_TAKEN, _TAKEN))
            hub.refused(session, ErrorCode.NAME_TAKEN)
            return
        welcome()
        for later in waiting:
            hub.received(session, later)

    cluster.online(frame.name, session.dialect is not None, takeover, answered)


def nick(hub: Hub, cluster: Cluster, member: Member, new: str, renamed: Callable[[], None]) -> None:
    """Ask the cluster for the new name; ``renamed`` when it is ours."""
    if not cluster.up:
        raise ProtocolError(ErrorCode.BACKPLANE_DOWN, _down())
    session = member.session
    hub.hold(session)  # what it sends next goes under the name the cluster gives it

    def answered(ours: bool) -> None:
        waiting = hub.release(session)
        if waiting is None:
            return  # gone meanwhile
        if not ours:
            session.send_error(ProtocolError(ErrorCode.NAME_TAKEN, _TAKEN), None)
        else:
            renamed()
        for later in waiting:
            hub.received(session, later)

    cluster.rename(member, new, time.time(), answered)


def private(hub: Hub, cluster: Cluster, member: Member, msg: Msg) -> None:
    """A private message to someone on another server (echoed here at once)."""
    person = cluster.presence.people.get(name_key(msg.to))
    if person is None:
        raise ProtocolError(ErrorCode.NO_SUCH_USER, "nobody of that name is online")
    config = hub.config
    text = clean_message(msg.text, config.max_text_bytes, config.max_text_lines)
    member.said(member.session.last_heard)
    sent = Private(time.time(), member.name, person.name, text, msg.id, msg.action)
    cluster.direct(member, sent)
    if person.away is not None:
        sent = Private(sent.time, member.name, person.name, text, msg.id, msg.action, person.away)
    member.tell(sent)


def others_in(cluster: Cluster, room: str) -> list[MemberInfo]:
    return [MemberInfo(name, away, server=server) for name, server, away in cluster.remote(room)]


def other_rooms(hub: Hub, cluster: Cluster) -> list[RoomInfo]:
    """Rooms with people only on other servers."""
    rooms = [(room, cluster.remote_count(room)) for room in sorted(cluster.room_names())]
    return [RoomInfo(room, count) for room, count in rooms if count and room not in hub.rooms]


def whois(cluster: Cluster, name: str, id: str | None) -> WhoisReply:
    person = cluster.presence.people.get(name_key(name))
    if person is None:
        raise ProtocolError(ErrorCode.NO_SUCH_USER, "nobody of that name is online")
    rooms = sorted(person.rooms)
    return WhoisReply(person.name, rooms, person.away, id, cluster.shown(person.server))


def _down() -> str:
    return "this server has lost its backplane (Redis): try again in a moment"
