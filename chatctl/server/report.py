"""``status``: the facts a server reports about itself, its rooms and its people."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatctl import __version__
from chatctl.protocol import (
    PROTOCOL_VERSION,
    HistoryInfo,
    RoomStatus,
    ServerInfo,
    StatusReply,
    UserInfo,
)
from chatctl.server.bans import SERVER
from chatctl.server.history import History

if TYPE_CHECKING:  # the hub calls this module
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
        )
        for m in hub.members.values()
    ]
    rooms = [
        RoomStatus(
            r.name,
            len(r.members),
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
    )
    return StatusReply(server=info, users=users)


def _history_info(history: History | None) -> HistoryInfo | None:
    if history is None:
        return None
    stats = history.stats()
    return HistoryInfo(stats.messages, stats.bytes, stats.oldest, history.error, stats.path)
