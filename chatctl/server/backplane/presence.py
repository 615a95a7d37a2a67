"""Who is on which server and in which room, cluster-wide, as this server knows it.

Pure. Built from Redis's snapshot at (re)connection, then kept by the stream's ops
in stream order, so it is what Redis held as of the last entry read: every server's
``/who``, ``/rooms`` and ``status`` answer from their mirror, without a round trip.
As in Redis, a room's member carries their server: a part from a server that is no
longer theirs (a name taken over elsewhere) changes nothing.
"""

from __future__ import annotations

from collections import Counter
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
        #: Room name -> member name keys -> (name, server), in the order they came in.
        self.rooms: dict[str, dict[str, tuple[str, str]]] = {}
        #: Room name -> how many of its members each server has (for counts without scans).
        self._counts: dict[str, Counter[str]] = {}

    def load(
        self,
        users: dict[str, str],
        away: dict[str, str],
        rooms: dict[str, dict[str, str]],
    ) -> None:
        """Start again from a snapshot (``users``: key -> "server name i|c"; a room's
        members: key -> "server name")."""
        self.people.clear()
        self.rooms.clear()
        self._counts.clear()
        for key, value in users.items():
            server, name, flag = [*value.split(" "), "", "c"][:3]
            self.people[key] = Person(name, server, flag == "i", away.get(key))
        for room, members in rooms.items():
            for key, value in members.items():
                server, _, name = value.partition(" ")
                self._enter(room, key, name, server)

    def online(self, name: str, server: str, irc: bool) -> None:
        key = name_key(name)
        old = self.people.get(key)
        rooms = old.rooms if old is not None and old.server == server else set()
        self.people[key] = Person(name, server, irc, None, rooms)

    def offline(self, name: str, server: str) -> Person | None:
        key = name_key(name)
        person = self.people.get(key)
        if person is None or person.server != server:
            return None
        del self.people[key]
        for room in list(person.rooms):
            self._leave(room, key, server)
        return person

    def came(self, room: str, name: str, server: str) -> None:
        self._enter(room, name_key(name), name, server)

    def went(self, room: str, name: str, server: str) -> None:
        """``name`` of ``server`` left ``room`` (not if they are there from another server)."""
        self._leave(room, name_key(name), server)

    def renamed(self, old: str, new: str, server: str) -> None:
        was, key = name_key(old), name_key(new)
        person = self.people.get(was)
        if person is None or person.server != server:
            return
        del self.people[was]
        person.name = new
        self.people[key] = person
        for room in person.rooms:
            members = self.rooms.get(room)
            if members is not None and members.pop(was, None) is not None:
                members[key] = (new, server)

    def set_away(self, name: str, text: str | None) -> None:
        person = self.people.get(name_key(name))
        if person is not None:
            person.away = text

    def count(self, room: str, server: str | None = None) -> int:
        """How many are in ``room`` (on ``server``, if given)."""
        counts = self._counts.get(room)
        if counts is None:
            return 0
        return counts[server] if server is not None else counts.total()

    def others(
        self, room: str, server: str, limit: int | None, skip: str | None
    ) -> list[tuple[str, str, str | None]]:
        """The people in ``room`` on servers other than ``server`` (the first ``limit``):
        name, server, away text. ``skip``: a name key held on ``server`` (taken over from
        another server whose leave is not read back yet: one person, not two)."""
        people = self.people
        found: list[tuple[str, str, str | None]] = []
        for key, (name, where) in self.rooms.get(room, {}).items():
            if where != server and key != skip:
                person = people.get(key)
                found.append((name, where, person.away if person else None))
                if limit is not None and len(found) >= limit:
                    break
        return found

    def others_count(self, room: str, server: str, skip: str | None) -> int:
        """How many ``others`` would list, without a scan."""
        count = self.count(room) - self.count(room, server)
        if skip is not None:
            entry = self.rooms.get(room, {}).get(skip)
            if entry is not None and entry[1] != server:
                count -= 1
        return count

    def servers(self) -> set[str]:
        return {person.server for person in self.people.values()}

    def on(self, server: str) -> list[Person]:
        return [person for person in self.people.values() if person.server == server]

    def _enter(self, room: str, key: str, name: str, server: str) -> None:
        members = self.rooms.setdefault(room, {})
        counts = self._counts.setdefault(room, Counter())
        was = members.get(key)
        if was is not None:
            counts[was[1]] -= 1
        members[key] = (name, server)
        counts[server] += 1
        person = self.people.get(key)
        if person is not None and person.server == server:
            person.rooms.add(room)

    def _leave(self, room: str, key: str, server: str) -> None:
        members = self.rooms.get(room)
        if members is None:
            return
        was = members.get(key)
        if was is None or was[1] != server:
            return
        del members[key]
        counts = self._counts[room]
        counts[server] -= 1
        if not members:
            del self.rooms[room]
            del self._counts[room]
        person = self.people.get(key)
        if person is not None and person.server == server:
            person.rooms.discard(room)
