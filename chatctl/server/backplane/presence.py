"""Who is on which server and in which room, cluster-wide, as this server knows it.

Pure. Built from Redis's snapshot at (re)connection, then kept by the stream's ops
in stream order, so it is what Redis held as of the last entry read: every server's
``/who``, ``/rooms`` and ``status`` answer from their mirror, without a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatctl.protocol import name_key


@dataclass
class Person:
    name: str
    server: str
    irc: bool = False
    away: str | None = None
    rooms: set[str] = field(default_factory=set)


class Presence:
    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        #: Room name -> member name keys -> names, in the order they came in.
        self.rooms: dict[str, dict[str, str]] = {}

    def load(
        self,
        users: dict[str, str],
        away: dict[str, str],
        rooms: dict[str, dict[str, str]],
    ) -> None:
        """Start again from a snapshot (``users``: key -> "server name i|c"; a room's
        members: key -> "server name")."""
        self.people.clear()
        self.rooms = {
            room: {key: value.partition(" ")[2] for key, value in members.items()}
            for room, members in rooms.items()
            if members
        }
        for key, value in users.items():
            server, name, flag = [*value.split(" "), "", "c"][:3]
            self.people[key] = Person(name, server, flag == "i", away.get(key))
        for room, members in self.rooms.items():
            for key in members:
                person = self.people.get(key)
                if person is not None:
                    person.rooms.add(room)

    def online(self, name: str, server: str, irc: bool) -> None:
        key = name_key(name)
        old = self.people.get(key)
        self.people[key] = Person(name, server, irc, None, old.rooms if old else set())

    def offline(self, name: str, server: str) -> Person | None:
        key = name_key(name)
        person = self.people.get(key)
        if person is None or person.server != server:
            return None
        del self.people[key]
        for room in person.rooms:
            self._leave(room, key)
        return person

    def came(self, room: str, name: str) -> None:
        key = name_key(name)
        self.rooms.setdefault(room, {})[key] = name
        person = self.people.get(key)
        if person is not None:
            person.rooms.add(room)

    def went(self, room: str, name: str, server: str) -> None:
        """``name`` of ``server`` left ``room`` (not if the name is another server's now)."""
        key = name_key(name)
        person = self.people.get(key)
        if person is not None and person.server != server:
            return
        self._leave(room, key)
        if person is not None:
            person.rooms.discard(room)

    def renamed(self, old: str, new: str) -> None:
        was, key = name_key(old), name_key(new)
        person = self.people.pop(was, None)
        if person is None:
            return
        person.name = new
        self.people[key] = person
        for room in person.rooms:
            members = self.rooms.get(room)
            if members is not None:
                members.pop(was, None)
                members[key] = new

    def set_away(self, name: str, text: str | None) -> None:
        person = self.people.get(name_key(name))
        if person is not None:
            person.away = text

    def servers(self) -> set[str]:
        return {person.server for person in self.people.values()}

    def on(self, server: str) -> list[Person]:
        return [person for person in self.people.values() if person.server == server]

    def _leave(self, room: str, key: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.pop(key, None)
            if not members:
                del self.rooms[room]
