"""A joined connection's chat identity: its name, protocol version, rooms and away text.

It also keeps one promise about order: a frame for this member alone (a reply,
an error, a private message) never overtakes a room broadcast queued before it.
Rooms keep the broadcasts of the current loop iteration in an outbox; before a
private frame is queued, the member takes its share of every outbox so far
(``_taken`` remembers how much), and at the end of the iteration the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from chatctl.protocol import name_key
from chatctl.server.dialect import V1, V2, Dialect

if TYPE_CHECKING:
    from chatctl.server.room import Room
    from chatctl.server.session import Session


class Member:
    """Someone who said hello; the hub holds them by name, each room by its members."""

    def __init__(
        self, session: Session, name: str, version: int, now: float, read_only: bool = False
    ) -> None:
        self.session = session
        #: It said hello ``read_only``: it may watch, not send (``join --read-only``).
        self.read_only = read_only
        self.name = name
        self.key = name_key(name)
        self.version = version
        #: How room broadcasts reach it: the session's (IRC), else by protocol version.
        self.dialect: Dialect = session.dialect or (V1 if version == 1 else V2)
        #: The rooms this member is in, by name, in the order joined.
        self.rooms: dict[str, Room] = {}
        self.away: str | None = None
        self.messages_sent = 0
        self.last_said = now
        #: How many items of a room's current outbox are already in the session's queue.
        self._taken: dict[Room, int] = {}

    # what the hub and the rooms call

    def tell(self, *frames: msgspec.Struct) -> None:
        """Frames for this member alone, after every broadcast queued before them, in
        what its session speaks."""
        self.catch_up()
        render = self.session.render
        self.session.queue(b"".join(map(render, frames)) if len(frames) > 1 else render(frames[0]))

    def catch_up(self) -> None:
        """Queue every broadcast of this iteration not queued yet, before a frame of our own."""
        for room in self.rooms.values():
            self._take(room)

    def share(self, room: Room, blob: bytes, items: list[bytes]) -> None:
        """The end of the iteration: ``room``'s broadcasts (``items``, joined in ``blob``).

        The common case (in one room, nothing else queued) writes the shared bytes
        as they are: no work per message per member.
        """
        if self._taken:
            pos = self._taken.pop(room, 0)
            if pos:
                if pos < len(items):
                    self.session.queue(b"".join(items[pos:]))
                return
        if len(self.rooms) == 1:
            self.session.deliver(blob)
        elif blob:
            self.session.queue(blob)

    @staticmethod
    def share_all(members: list[Member], room: Room, blob: bytes, items: list[bytes]) -> None:
        """``share`` for every member, with the common case (one room, nothing taken
        early) one call to ``Session.deliver`` rather than two: this loop runs once per
        member per loop iteration that has broadcasts."""
        for member in members:
            if member._taken or len(member.rooms) != 1:
                member.share(room, blob, items)
            else:
                member.session.deliver(blob)

    def entered(self, room: Room, outbox_length: int) -> None:
        """Now in ``room``; what it broadcast earlier in this iteration is not ours."""
        self.rooms[room.name] = room
        if outbox_length:
            self._taken[room] = outbox_length

    def skip_last(self, room: Room) -> None:
        """The event ``room`` just broadcast is this member's own, shown to it another
        way (``Dialect.hides_own_presence``): everything before it, but not it."""
        items = room.outbox_for(self.dialect)
        pos = self._taken.get(room, 0)
        for data in items[pos:-1]:
            if data:
                self.session.queue(data)
        self._taken[room] = len(items)

    def left(self, room: Room) -> None:
        """No longer in ``room``: take what it broadcast so far (our own part, say), then go."""
        self._take(room)
        self._taken.pop(room, None)
        self.rooms.pop(room.name, None)

    def renamed(self, name: str) -> None:
        self.name = name
        self.key = name_key(name)

    def set_away(self, text: str | None) -> None:
        self.away = text

    def said(self, now: float) -> None:
        self.messages_sent += 1
        self.last_said = now

    def _take(self, room: Room) -> None:
        items = room.outbox_for(self.dialect)
        pos = self._taken.get(room, 0)
        if pos < len(items):
            for data in items[pos:]:
                if data:
                    self.session.queue(data)
            self._taken[room] = len(items)
