"""What the server tells its observer: the connection log's raw material.

The server calls one ``Observer`` with these; ``chatctl.ui.serverlog`` renders them,
tests record them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chatctl.protocol.codes import Reason
from chatctl.protocol.text import DEFAULT_ROOM


@dataclass(frozen=True)
class Listening:
    addresses: list[tuple[str, int]]
    #: The IRC door's, if open.
    irc: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class UserJoined:
    name: str
    address: str


@dataclass(frozen=True)
class UserLeft:
    name: str
    address: str
    reason: Reason | str


@dataclass(frozen=True)
class Refused:
    address: str
    code: Reason | str


@dataclass(frozen=True)
class Closed:
    """A connection that had not joined was closed by the server, and why."""

    address: str
    reason: Reason | str


@dataclass(frozen=True)
class MessageRelayed:
    """A room message (``--verbose`` only); private messages are never reported."""

    name: str
    text: str
    room: str = DEFAULT_ROOM
    action: bool = False


@dataclass(frozen=True)
class RoomEntered:
    name: str
    room: str
    #: The room did not exist until this person came in.
    created: bool = False


@dataclass(frozen=True)
class RoomParted:
    name: str
    room: str


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str


@dataclass(frozen=True)
class Stopping:
    users: int


@dataclass(frozen=True)
class HistoryOpened:
    path: str
    messages: int


@dataclass(frozen=True)
class HistoryFailed:
    """The history file failed while running: the server goes on without history."""

    message: str


@dataclass(frozen=True)
class SearchFailed:
    """The search index failed: history goes on, ``/search`` answers with an error."""

    message: str


@dataclass(frozen=True)
class Moderated:
    """An operator acted in a room: ``text`` is what the room was told ("kicked bob")."""

    room: str
    by: str
    event: str
    text: str


@dataclass(frozen=True)
class OperatorsLoaded:
    """The server's operators were read (at start, or again on SIGHUP)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class OperatorsFailed:
    """``--ops-file`` could not be read again on SIGHUP: the operators stay as they were."""

    message: str


@dataclass(frozen=True)
class BackplaneDown:
    """The backplane (Redis) is unreachable: messages are held until it is back."""

    url: str
    why: str


@dataclass(frozen=True)
class BackplaneUp:
    """The backplane is back (or there from the start): the server reads from its cursor."""

    url: str


@dataclass(frozen=True)
class BackplaneGap:
    """Part of the cluster's stream could not be read (Redis lost or trimmed it)."""

    why: str


@dataclass(frozen=True)
class ServerGone:
    """Another server of the cluster stopped beating: its ``users`` were taken out."""

    server: str
    users: int


ServerEvent = (
    Listening
    | UserJoined
    | UserLeft
    | Refused
    | Closed
    | MessageRelayed
    | RoomEntered
    | RoomParted
    | Renamed
    | Stopping
    | HistoryOpened
    | HistoryFailed
    | SearchFailed
    | Moderated
    | OperatorsLoaded
    | OperatorsFailed
    | BackplaneDown
    | BackplaneUp
    | BackplaneGap
    | ServerGone
)
Observer = Callable[[ServerEvent], None]


def ignore(event: ServerEvent) -> None:
    """The default observer, for servers embedded in tests or other programs."""
