"""``status``: the facts a server reports about itself, its rooms and its people."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatctl import __version__
from chatctl.protocol import (
    PROTOCOL_VERSION,
    ClusterInfo,
    HistoryInfo,
    RoomStatus,
    ServerInfo,
    StatusReply,
    UserInfo,
)
from chatctl.server.bans import SERVER
from chatctl.server.history import History

if TYPE_CHECKING:  # the hub calls this module
    from chatctl.server.cluster import Cluster
    from chatctl.server.hub import Hub


def status(hub: Hub) -> StatusReply:
    now, mono = time.time(), time.monotonic()
    users = [
        UserInfo(
            name=m.name,
            address=m.session.address,
            connected_at=m.session.connected_at,
            idle_seconds=round(mono - m.last_said, 3),
            messages_sent=m.messages_sent,
            bytes_queued=m.session.bytes_queued,
            rooms=list(m.rooms),
            away=m.away,
            protocol=m.version,
            irc=m.dialect.key.startswith("irc"),
            server=hub.cluster.name if hub.cluster is not None else None,
        )
        for m in hub.members.values()
    ]
    cluster = None
    if hub.cluster is not None:
        users += _remote_users(hub.cluster)
        link = hub.cluster.link
        servers = {hub.cluster.name} | {u.server for u in users if u.server}
        cluster = ClusterInfo(
            hub.cluster.name, sorted(servers), link.up, link.reconnects, round(link.lag_seconds, 3)
        )
    rooms = [
        RoomStatus(
            r.name,
            r.roster()[1],
            r.messages,
            r.topic,
            sorted(r.operators),
            sorted(k for k in list(r.muted) if r.silenced(k, now)),
            r.moderated,
            sorted(r.voiced),
            list(r.hands),
            [ban.info() for ban in hub.bans.of(r.name, now)],
        )
        for r in hub.rooms.values()
    ]
    info = ServerInfo(
        version=__version__,
        protocol=PROTOCOL_VERSION,
        started_at=hub.started_at,
        uptime_seconds=round(now - hub.started_at, 3),
        users=len(users),
        connections=len(hub.connections),
        messages_relayed=hub.messages_relayed,
        leave_reasons=dict(hub.leave_reasons),
        rooms=rooms,
        history=_history_info(hub.history),
        server_id=hub.claims.server_id if hub.claims is not None else None,
        operators=list(hub.operators.names),
        moderation=list(hub.operators.record),
        bans=[ban.info() for ban in hub.bans.of(SERVER, now)],
        cluster=cluster,
    )
    return StatusReply(server=info, users=users)


def _remote_users(cluster: Cluster) -> list[UserInfo]:
    """The people on the other servers, as far as the cluster says."""
    return [
        UserInfo(
            name=person.name,
            address="",
            connected_at=0.0,
            idle_seconds=0.0,
            messages_sent=0,
            bytes_queued=0,
            rooms=sorted(person.rooms),
            away=person.away,
            irc=person.irc,
            server=cluster.shown(person.server),
        )
        for person in cluster.presence.people.values()
        if person.server != cluster.origin
    ]


def _history_info(history: History | None) -> HistoryInfo | None:
    if history is None:
        return None
    stats = history.stats()
    return HistoryInfo(stats.messages, stats.bytes, stats.oldest, history.error, stats.path)
