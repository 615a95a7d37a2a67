"""What ``status`` answers: the server, its rooms, everyone connected, and its history.

Read by ``chatctl status`` (and ``--json``) and by monitors; documented field by field
in docs/protocol.md, ``status_reply``.
"""

from __future__ import annotations

import msgspec

from chatctl.protocol.frames import _Frame


class BanInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One ban, as ``bans_reply`` lists it: ``name`` or ``network`` (or both: the name and
    the address it had), until when (none: until lifted), by whom, why."""

    by: str
    name: str | None = None
    network: str | None = None
    until: float | None = None
    reason: str | None = None
    #: The whole server, not only the room.
    server: bool = False


class UserInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One connected participant, as ``status`` reports it."""

    name: str
    address: str
    connected_at: float
    idle_seconds: float
    messages_sent: int
    bytes_queued: int
    rooms: list[str] = []
    away: str | None = None
    protocol: int = 0
    #: Connected through the IRC door.
    irc: bool = False
    #: In a cluster: the server they are connected to (every server lists everyone).
    server: str | None = None


class RoomStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """One room, as ``status`` reports it."""

    name: str
    members: int
    messages: int
    topic: str | None = None
    #: Who may moderate it, besides the server's operators; who is muted there.
    operators: list[str] = []
    muted: list[str] = []
    #: Only operators and the voiced speak (``/moderate``); who is voiced; raised hands.
    moderated: bool = False
    voiced: list[str] = []
    hands: list[str] = []
    bans: list[BanInfo] = []


class Moderation(msgspec.Struct, frozen=True, omit_defaults=True):
    """One operator's action, as ``status`` lists the latest of them."""

    time: float
    room: str
    by: str
    event: str
    name: str | None = None
    text: str | None = None


class HistoryInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """The server's history: messages kept, the file's size, the oldest message's time.

    ``error``: why the server stopped keeping history while running (it goes on without).
    ``path``: the file, on the server's machine (absent from servers before it was added).
    """

    messages: int
    bytes: int
    oldest: float | None = None
    error: str | None = None
    path: str | None = None


class ClusterInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """A server sharing rooms through a backplane (``serve --backplane``)."""

    #: This server's name in the cluster (host:port), as ``server`` fields give it.
    name: str
    #: Every server with someone on it, this one included.
    servers: list[str]
    #: Whether Redis is reachable now; how often it was lost; how late the stream is read.
    up: bool
    reconnects: int = 0
    lag_seconds: float = 0.0


class ServerInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """Facts about the server itself, as ``status`` reports them."""

    version: str
    protocol: int
    started_at: float
    uptime_seconds: float
    users: int
    connections: int
    messages_relayed: int
    leave_reasons: dict[str, int]
    rooms: list[RoomStatus] = []
    #: None: the server keeps no history.
    history: HistoryInfo | None = None
    #: The server's identity (with history), as its ``welcome`` gives it.
    server_id: str | None = None
    #: The server's operators (``serve --op``, ``--ops-file``).
    operators: list[str] = []
    #: The latest operators' actions, oldest first.
    moderation: list[Moderation] = []
    #: Bans of the whole server (a room's own are in its ``RoomStatus``).
    bans: list[BanInfo] = []
    cluster: ClusterInfo | None = None


class StatusReply(_Frame, tag="status_reply", frozen=True):
    """Answer to ``status``."""

    server: ServerInfo
    users: list[UserInfo]
