"""How a kind of member reads a room's broadcasts: version 2, version 1, or IRC.

A room encodes each event once per dialect present (not once per member), so the
fan-out stays one shared write per member whatever its members speak. A dialect
may also show a member's own join, part and nick change some other way (IRC
shows each as its own line, to you alone, so it always knows your rooms and name),
or not show your own messages (IRC without ``echo-message``): the room then keeps
that one event from that member.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatctl.protocol import RoomEvent, encode, v1


@dataclass(frozen=True, eq=False)
class Dialect:
    """One encoding of room events, shared by every member that reads it."""

    #: Members of one key share one outbox per room.
    key: str
    event: Callable[[RoomEvent], bytes]
    #: The member's own ``join``, ``part`` and ``nick`` come to it alone, not shared.
    hides_own_presence: bool = False
    #: The member's own messages are not sent back.
    hides_own_messages: bool = False
    #: Someone's leave and nick change reach it once, not once per room it shares with
    #: them (IRC's QUIT and NICK are about a person): its encoding of them is b"", and the
    #: hub tells it once (``Hub.tell_once``).
    once_per_person: bool = False
    #: Its client can keep a claimed name's secret (IRC clients cannot: their names stay
    #: unclaimed, with no read marks and no kept private messages).
    claims: bool = True


def _v1_event(event: RoomEvent) -> bytes:
    return encode(v1.view(event))


V2 = Dialect("v2", encode)
V1 = Dialect("v1", _v1_event)
