"""The frames a server sends: events in rooms, answers to requests, errors.

Every room event (``message``, ``join``, ``part``, ``leave``, ``nick``) carries its
room and that room's ``seq``. Fields that version 2 added have defaults and are
left out when unset, so a version-1 event (``room`` None) encodes exactly as it
always did; ``chatctl.protocol.v1`` maps the rest to version-1 terms.
"""

from __future__ import annotations

from typing import get_args

import msgspec

from chatctl.protocol.frames import Ping, Pong, _Frame, tags
from chatctl.protocol.status import BanInfo, StatusReply


class Welcome(_Frame, tag="welcome", frozen=True):
    """Handshake accepted. Version 2: the rooms follow, one ``room`` frame each.

    (A version-1 welcome also lists the room's users and its ``seq``: ``v1.Welcome``.)
    ``server_id``: the server's own identity, with claimed names (key your secrets by it).
    """

    version: int
    name: str
    server: str
    server_id: str | None = None


class Claim(_Frame, tag="claim", frozen=True):
    """The name ``name`` is yours on this server now: present ``secret`` with it from now on.

    Sent once, after the ``welcome`` or the ``nick`` that first used the name.
    """

    name: str
    secret: str
    server_id: str

    def __repr__(self) -> str:
        return f"Claim(name={self.name!r}, secret='***', server_id={self.server_id!r})"


class Forgotten(_Frame, tag="forgotten", frozen=True):
    """Answer to ``forget``: the claim on ``name`` is gone; anyone may use the name now."""

    name: str


class RoomState(_Frame, tag="room", frozen=True):
    """You are in ``room`` now: who is there, and the last ``seq`` before your ``join``.

    ``users`` holds at most ``WELCOME_NAMES`` names, the longest present first;
    ``online`` counts everyone, you included. ``history``: how many past messages
    (``message`` frames with ``history`` true, oldest first) follow, when asked for;
    ``unread``: how many of those, the last ones, are new since your read mark;
    ``more``: how many more new ones there are, older than those sent.
    """

    room: str
    seq: int
    users: list[str]
    online: int
    topic: str | None = None
    history: int = 0
    unread: int = 0
    more: int = 0


class Message(_Frame, tag="message", frozen=True):
    """A relayed message, stamped by the server with its time and the room's ``seq``.

    ``id``: the sender's message id, if it gave one; ``action``: a ``/me``;
    ``history``: replayed from the server's history, not new.

    ``event``: an operator's action (``topic``, ``kick``, ``mute``, ``unmute``, ``op``,
    ``deop``) on ``target``, with ``name`` the operator and ``text`` the server's own
    words ("kicked bob (spam)"), sent as an action: a client that does not know
    ``event`` shows "* teacher kicked bob (spam)", which is right. A ``topic`` event
    carries the new ``topic`` (absent: cleared).
    """

    seq: int
    time: float
    name: str
    text: str
    room: str | None = None
    id: str | None = None
    action: bool = False
    history: bool = False
    event: str | None = None
    target: str | None = None
    topic: str | None = None


class Joined(_Frame, tag="join", frozen=True):
    """Someone entered the room."""

    seq: int
    time: float
    name: str
    room: str | None = None


class Parted(_Frame, tag="part", frozen=True):
    """Someone left the room but is still connected (version 2).

    In a room over the announce limit only the person parting is told, without ``seq``.
    ``reason``: ``kicked`` when an operator put them out (the ``kick`` event came first).
    """

    time: float
    name: str
    room: str
    seq: int | None = None
    reason: str | None = None


#: ``Parted.reason`` of someone an operator kicked out of the room, or banned from it.
KICKED = "kicked"
BANNED = "banned"


class Left(_Frame, tag="leave", frozen=True):
    """Someone disconnected; ``reason`` says why (quit, dropped, slow_consumer, ...)."""

    seq: int
    time: float
    name: str
    reason: str
    room: str | None = None


class NickChanged(_Frame, tag="nick", frozen=True):
    """``name`` is now called ``new``: one per room they are in, with its ``seq``.

    Someone in no room gets one without ``room`` and ``seq``, as the answer to their ``nick``.
    """

    time: float
    name: str
    new: str
    room: str | None = None
    seq: int | None = None


class Private(_Frame, tag="private", frozen=True):
    """A private message: to its recipient, and echoed to its sender (version 2).

    ``away``: on the sender's copy only, the recipient's away text if they are away;
    ``history``: from the server's history (``history`` with ``to``, ``search``), not new.
    """

    time: float
    name: str
    to: str
    text: str
    id: str | None = None
    action: bool = False
    away: str | None = None
    history: bool = False


class AwayState(_Frame, tag="away", frozen=True):
    """Answer to ``away``: you are away with ``text``, or back (no ``text``)."""

    name: str
    text: str | None = None
    id: str | None = None


class HandState(_Frame, tag="hand", frozen=True):
    """``name`` raised a hand in ``room`` (``position`` in the queue, from 1), or lowered it
    (``down``): to them and to the room's operators."""

    room: str
    name: str
    position: int = 0
    down: bool = False
    id: str | None = None


class HandsReply(_Frame, tag="hands_reply", frozen=True):
    """Answer to ``hands``: who has a hand up, first raised first."""

    room: str
    names: list[str]
    id: str | None = None


class BansReply(_Frame, tag="bans_reply", frozen=True):
    """Answer to ``bans``."""

    room: str
    bans: list[BanInfo]
    id: str | None = None


class RoomInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One room, as ``rooms_reply`` lists it."""

    name: str
    members: int
    topic: str | None = None
    #: Only its operators and the voiced speak (``mod`` ``moderate``).
    moderated: bool = False


class RoomsReply(_Frame, tag="rooms_reply", frozen=True):
    """Answer to ``rooms``: every room on the server, by name."""

    rooms: list[RoomInfo]
    id: str | None = None


class MemberInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One person in a room, as ``who_reply`` lists them."""

    name: str
    away: str | None = None
    #: An operator of the room (or of the server).
    op: bool = False
    #: In a cluster: the server they are connected to, if not this one.
    server: str | None = None


class WhoReply(_Frame, tag="who_reply", frozen=True):
    """Answer to ``who``: the room's members, in the order they came in."""

    room: str
    users: list[MemberInfo]
    id: str | None = None


class WhoisReply(_Frame, tag="whois_reply", frozen=True):
    """The answer to ``whois``: the name as spelt, its away text, its rooms."""

    name: str
    rooms: list[str]
    away: str | None = None
    id: str | None = None
    #: In a cluster: the server they are connected to, if not this one.
    server: str | None = None


class HistoryReply(_Frame, tag="history_reply", frozen=True):
    """Answer to ``history``: the messages, oldest first; ``more``: older ones match too."""

    room: str
    messages: list[Message]
    more: bool = False
    id: str | None = None


class PrivateHistoryReply(_Frame, tag="private_history", frozen=True):
    """Answer to ``history`` with ``to``: your private messages with ``name``, oldest
    first; ``more``: older ones match too."""

    name: str
    messages: list[Private]
    more: bool = False
    id: str | None = None


class SearchReply(_Frame, tag="search_reply", frozen=True):
    """Answer to ``search``: the newest matches, oldest first, in rooms (``messages``)
    and private messages (``private``); ``more``: older ones match too."""

    words: str
    messages: list[Message]
    private: list[Private]
    more: bool = False
    id: str | None = None


class UnreadReply(_Frame, tag="unread_reply", frozen=True):
    """Answer to ``unread``: new messages since your read mark, by room (none: absent)."""

    rooms: dict[str, int]
    id: str | None = None


class Error(_Frame, tag="error", frozen=True):
    """Something the peer sent was refused; ``code`` is stable, ``message`` is for humans.

    ``retry_after_ms`` comes with ``throttled``: when trying again may succeed. ``id``
    echoes the id of the frame refused, ``room`` names the room it was about.
    """

    code: str
    message: str
    retry_after_ms: int | None = None
    id: str | None = None
    room: str | None = None
    #: With ``name_claimed``: the server's identity, to find the secret by.
    server_id: str | None = None


class Shutdown(_Frame, tag="shutdown", frozen=True):
    """The server is going away; the connection closes next."""

    reason: str


#: Events that happen in a room: each takes the room's next ``seq``.
RoomEvent = Message | Joined | Parted | Left | NickChanged
ServerFrame = (
    Welcome
    | Claim
    | Forgotten
    | RoomState
    | RoomEvent
    | Private
    | AwayState
    | HandState
    | HandsReply
    | BansReply
    | RoomsReply
    | HistoryReply
    | PrivateHistoryReply
    | SearchReply
    | UnreadReply
    | WhoReply
    | WhoisReply
    | StatusReply
    | Error
    | Shutdown
    | Ping
    | Pong
)

SERVER_TAGS = tags(ServerFrame)
ROOM_EVENT_TYPES: tuple[type, ...] = get_args(RoomEvent)
