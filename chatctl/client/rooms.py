"""The client's view of its rooms: who is in each, and which one the user types into.

Pure bookkeeping over the frames the receive loop sees, so a UI can show the
room in the prompt, prefix lines with their room and complete names with Tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatctl.protocol import (
    Joined,
    Left,
    Message,
    NickChanged,
    Parted,
    RoomState,
    ServerFrame,
    name_key,
)


@dataclass
class RoomView:
    """One room we are in: its members by name key (as shown), the last ``seq`` seen,
    and its topic."""

    name: str
    seq: int = 0
    members: dict[str, str] = field(default_factory=dict)
    topic: str | None = None


class Rooms:
    """The rooms we are in, in the order joined, and the current one (None: in none)."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomView] = {}
        self.current: str | None = None

    def __contains__(self, room: str) -> bool:
        return room.lower() in self.rooms

    def __len__(self) -> int:
        return len(self.rooms)

    def names(self) -> list[str]:
        return list(self.rooms)

    def switch(self, room: str) -> None:
        """Type into ``room`` from now on (it need not be confirmed yet)."""
        self.current = room.lower()

    def switch_back(self, room: str | None) -> None:
        """A join was refused: type into ``room`` again, if we are still in it."""
        self.current = room if room in self.rooms else next(iter(self.rooms), None)

    def topic(self, room: str | None = None) -> str | None:
        """The topic of ``room`` (default: the current one), as last told."""
        view = self.rooms.get((room or self.current or "").lower())
        return view.topic if view else None

    def members(self, room: str | None = None) -> list[str]:
        """Names in ``room`` (default: the current one), as shown."""
        view = self.rooms.get((room or self.current or "").lower())
        return list(view.members.values()) if view else []

    def apply(self, frame: ServerFrame, me: str) -> None:
        """Follow one frame from the server; ``me`` is our name after it."""
        match frame:
            case RoomState(room=room, seq=seq, users=users, topic=topic):
                view = RoomView(room, seq, {name_key(u): u for u in users}, topic)
                self.rooms[room] = view
                if self.current is None or self.current not in self.rooms:
                    self.current = room
            case Message(room=room, seq=seq) if room in self.rooms:
                self._seen(room, seq)  # a replayed one is older than the state: no change
                if frame.event == "topic" and not frame.history:
                    self.rooms[room].topic = frame.topic
            case Joined(room=room, name=name) if room in self.rooms:
                self.rooms[room].members[name_key(name)] = name
                self._seen(room, frame.seq)
            case Parted(room=room, name=name) if room in self.rooms:
                if name_key(name) == name_key(me):
                    self._gone(room)
                else:
                    self.rooms[room].members.pop(name_key(name), None)
                    self._seen(room, frame.seq)
            case Left(room=room, name=name) if room in self.rooms:
                self.rooms[room].members.pop(name_key(name), None)
                self._seen(room, frame.seq)
            case NickChanged(room=room, name=old, new=new) if room in self.rooms:
                view = self.rooms[room]
                view.members.pop(name_key(old), None)
                view.members[name_key(new)] = new
                self._seen(room, frame.seq)

    def _seen(self, room: str | None, seq: int | None) -> None:
        if room is not None and seq is not None:
            self.rooms[room].seq = max(self.rooms[room].seq, seq)

    def _gone(self, room: str) -> None:
        del self.rooms[room]
        if self.current == room:
            self.current = next(iter(self.rooms), None)
