"""The frames a client sends: one msgspec struct per ``type``.

msgspec decodes a tagged union straight into these (``type`` is the tag), so
shape and types are checked while decoding; ``docs/protocol.md`` documents each.
Fields added in version 2 all have defaults, so a version-1 frame decodes the same
as it always did. What the server sends is in ``chatctl.protocol.replies``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, get_args

import msgspec

from chatctl.wirelimits import MAX_HISTORY, MAX_SEARCH

#: The version this package speaks; a server also accepts every version in SUPPORTED_VERSIONS.
PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})

Version = Annotated[int, msgspec.Meta(ge=0, le=2**31)]
#: A message id chosen by the client: echoed on what it caused, so the client matches its
#: own messages by id rather than by text. Printable ASCII, no spaces, at most 64.
#: The largest ``seq`` a frame may name: SQLite's INTEGER is 64 bits.
MAX_SEQ = 2**62
MsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
#: A claim secret as the server gave it (URL-safe base64).
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
#: How many past messages of a room to replay when entering it (servers that keep history).
HistoryCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_HISTORY)]


class _Frame(msgspec.Struct, frozen=True, tag_field="type", omit_defaults=True):
    """Base of every frame; ``type`` on the wire is each subclass's tag."""


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


class Hello(_Frame, tag="hello", frozen=True):
    """First frame of a chat participant: protocol version, wanted name, room password.

    ``rooms`` (version 2): the rooms to be in from the start; None means ``#lobby``.
    ``history``: replay up to that many past messages of each room (none if unset).
    ``secret``: the name's claim secret, given by this server when the name was first used.
    ``replace``: with that secret, take the name over from a connection still holding it
    (our own, left behind by a network that went away) rather than be refused.
    ``read_only``: this connection only watches (a projector screen): it may not send.
    """

    version: Version
    name: str
    password: str | None = None
    rooms: list[str] | None = None
    history: HistoryCount | None = None
    secret: Secret | None = None
    replace: bool = False
    read_only: bool = False

    def __repr__(self) -> str:  # never show the password or the secret
        return (
            f"Hello(version={self.version!r}, name={self.name!r}, "
            f"password={_masked(self.password)}, rooms={self.rooms!r}, "
            f"history={self.history!r}, secret={_masked(self.secret)}, "
            f"replace={self.replace!r}, read_only={self.read_only!r})"
        )


class Say(_Frame, tag="say", frozen=True):
    """A message to a room (``#lobby`` when none is named); a paste is one message.

    ``action``: a ``/me`` action ("alice waves"), shown as such.
    """

    text: str
    room: str | None = None
    id: MsgId | None = None
    action: bool = False


class Join(_Frame, tag="join", frozen=True):
    """Enter a room, creating it if nobody is in it (version 2); ``history`` as in ``hello``."""

    room: str
    id: MsgId | None = None
    history: HistoryCount | None = None


class Part(_Frame, tag="part", frozen=True):
    """Leave one room and stay connected (version 2)."""

    room: str
    id: MsgId | None = None


class Msg(_Frame, tag="msg", frozen=True):
    """A private message to one person, wherever they are (version 2)."""

    to: str
    text: str
    id: MsgId | None = None
    action: bool = False


class Nick(_Frame, tag="nick", frozen=True):
    """Change your name; the same rules as for ``hello``, ``secret`` included (version 2)."""

    name: str
    id: MsgId | None = None
    secret: Secret | None = None

    def __repr__(self) -> str:
        return f"Nick(name={self.name!r}, id={self.id!r}, secret={_masked(self.secret)})"


class Read(_Frame, tag="read", frozen=True):
    """You have shown the room's messages up to ``seq``: your read mark moves there
    (only forward; kept for claimed names, for "since you left"). No answer (version 2)."""

    room: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class HistoryRequest(_Frame, tag="history", frozen=True):
    """Past messages of a room you are in, newest ``limit`` of those before ``before`` (a
    ``seq``) and at or after ``since`` (a time), oldest first (version 2).

    With ``to`` instead of ``room``: your private messages with that name (no ``before``).
    """

    room: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_HISTORY)] = 50
    before: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)] | None = None
    since: float | None = None
    id: MsgId | None = None
    to: str | None = None


class SearchRequest(_Frame, tag="search", frozen=True):
    """The newest ``limit`` messages with all of ``words``, in the rooms you are in and
    your private messages (version 2)."""

    words: str
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEARCH)] = 20
    id: MsgId | None = None


class UnreadRequest(_Frame, tag="unread", frozen=True):
    """How many messages are new since your read mark, in each room you have one in."""

    id: MsgId | None = None


class Forget(_Frame, tag="forget", frozen=True):
    """Drop the claim on ``name``, proven by its ``secret``; allowed before ``hello``."""

    name: str
    secret: Secret
    password: str | None = None

    def __repr__(self) -> str:
        return f"Forget(name={self.name!r}, secret='***', password={_masked(self.password)})"


class Away(_Frame, tag="away", frozen=True):
    """Mark yourself away with an optional text; no ``text`` means back (version 2)."""

    text: str | None = None
    id: MsgId | None = None


class RoomsRequest(_Frame, tag="rooms", frozen=True):
    """List the server's rooms (version 2)."""

    id: MsgId | None = None


class WhoRequest(_Frame, tag="who", frozen=True):
    """List a room's members (version 2)."""

    room: str
    id: MsgId | None = None


class Whois(_Frame, tag="whois", frozen=True):
    """Who ``name`` is: online or not, away or not, in which rooms (``whois_reply``)."""

    name: str
    id: MsgId | None = None


class Topic(_Frame, tag="topic", frozen=True):
    """Set ``room``'s topic, or clear it (no ``text``); operators only (version 2)."""

    room: str
    text: str | None = None
    id: MsgId | None = None


class Do(StrEnum):
    """What an operator does to someone in a room (``mod``)."""

    KICK = "kick"
    MUTE = "mute"
    UNMUTE = "unmute"
    BAN = "ban"
    UNBAN = "unban"
    OP = "op"
    DEOP = "deop"
    VOICE = "voice"
    DEVOICE = "devoice"
    #: The room itself: only operators and the voiced speak (``+m``), or everyone again.
    MODERATE = "moderate"
    UNMODERATE = "unmoderate"


#: The longest mute: a year (a mute without ``seconds`` lasts until ``unmute``).
MAX_MUTE_SECONDS = 366 * 86400


class Moderate(_Frame, tag="mod", frozen=True):
    """An operator's action on ``name`` in ``room`` (version 2), told to the whole room.

    ``name``: whom (for ``ban`` and ``unban`` also an address or network, ``10.0.0.0/24``;
    none for ``moderate``, ``unmoderate``, and ``voice`` of the first raised hand).
    ``reason``: said with it; ``seconds``: how long a ``mute`` or ``ban`` lasts (none: until
    lifted); ``server``: a ``ban`` or ``unban`` of the whole server (server operators).
    """

    room: str
    do: Do
    name: str | None = None
    reason: str | None = None
    seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_MUTE_SECONDS)] | None = None
    server: bool = False
    id: MsgId | None = None


class Hand(_Frame, tag="hand", frozen=True):
    """Raise your hand in a moderated ``room`` (``down``: lower it); its operators see the
    queue (version 2)."""

    room: str
    down: bool = False
    id: MsgId | None = None


class HandsRequest(_Frame, tag="hands", frozen=True):
    """The raised hands of ``room``, first raised first (operators)."""

    room: str
    id: MsgId | None = None


class BansRequest(_Frame, tag="bans", frozen=True):
    """The bans of ``room`` (and, to a server operator, of the whole server)."""

    room: str
    id: MsgId | None = None


class StatusRequest(_Frame, tag="status", frozen=True):
    """Ask for server facts; allowed with or without joining (password: the room's, if any)."""

    password: str | None = None

    def __repr__(self) -> str:
        return f"StatusRequest(password={_masked(self.password)})"


class Bye(_Frame, tag="bye", frozen=True):
    """Leave on purpose; lets the server tell "quit" from "dropped"."""


# Both directions


class Ping(_Frame, tag="ping", frozen=True):
    """Liveness probe; the peer answers with ``pong``."""


class Pong(_Frame, tag="pong", frozen=True):
    """Answer to ``ping``."""


#: Frames only a version-2 connection may send (a version-1 one gets ``unknown_type``,
#: as from a version-1 server).
V2Request = (
    Join
    | Part
    | Msg
    | Nick
    | Away
    | RoomsRequest
    | WhoRequest
    | Whois
    | Read
    | HistoryRequest
    | SearchRequest
    | UnreadRequest
    | Forget
    | Topic
    | Moderate
    | Hand
    | HandsRequest
    | BansRequest
)
ClientFrame = Hello | Say | StatusRequest | Bye | Ping | Pong | V2Request


def tags(union: object) -> frozenset[str]:
    """The ``type`` values of a union of frames."""
    return frozenset(str(t.__struct_config__.tag) for t in get_args(union))


CLIENT_TAGS = tags(ClientFrame)
V2_TYPES: tuple[type, ...] = get_args(V2Request)
