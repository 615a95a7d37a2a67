"""A room: its members, its one ``seq``, its outbox; what happens in it.

Every event in a room takes the room's next ``seq`` and is encoded once, into the
outbox. Once per loop iteration the hub calls ``flush``: the outbox is joined
once and each member gets those same bytes (``Member.share``), so the work per
message does not grow with the number of members. Members of another dialect
(version 1, only ever in ``#lobby``; IRC) get an outbox of their own, encoded once
per event for all of them and kept only while there are any of them.

Joins, parts and leaves are announced while the room, counted with the person
coming or going, holds at most ``announce_limit`` people; above it they pass
quietly and take no ``seq`` (docs/protocol.md, "Big rooms").

With history, every message is added to it as it is stamped (the hub commits
before the flush), and a newcomer who asks gets the last ones after its state.

In a cluster (``serve --backplane``) a room stamps nothing itself: its events go
to the cluster (``_relay``) and come back, with the cluster's ``seq``, through
``deliver``, the one place where they are kept and broadcast then.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING

from chatctl.protocol import (
    MAX_HISTORY,
    WELCOME_NAMES,
    Joined,
    Left,
    Message,
    NickChanged,
    Parted,
    Reason,
    RoomEvent,
    RoomState,
    encode,
    name_key,
    v1,
)
from chatctl.server.dialect import V2, Dialect
from chatctl.server.history import History
from chatctl.server.member import Member

if TYPE_CHECKING:
    from chatctl.server.cluster import Cluster


class _Outbox:
    """A dialect's encodings of this iteration's broadcasts, parallel to the room's own."""

    __slots__ = ("dialect", "items", "members")

    def __init__(self, dialect: Dialect, length: int) -> None:
        self.dialect = dialect
        #: b"": nothing for them (an event from before the first of them came in).
        self.items: list[bytes] = [b""] * length
        self.members = 0


class Room:
    """One room; the hub creates it on its first join and forgets it when it is empty."""

    def __init__(
        self,
        name: str,
        announce_limit: int,
        server: str,
        dirty: Callable[[Room], None],
        history: History | None = None,
        keep_operators: bool = False,
        relay: Cluster | None = None,
    ) -> None:
        self.name = name
        #: Members in the order they came in (a dict as an ordered set).
        self.members: dict[Member, None] = {}
        self._history = history
        #: Continues from the history's, so no ``seq`` is ever given out twice.
        self.seq = history.room_seq(name) if history is not None else 0
        #: The cluster this room's events go through (None: this server alone).
        self._relay = relay
        if relay is not None:
            self.seq = relay.seq(name, self.seq)
        self.messages = 0
        self.deliveries = 0  # broadcasts x members, counted per flush (serve --metrics)
        self.topic: str | None = history.topic(name) if history is not None else None
        #: Name keys of the room's operators (the server's own are the hub's), and of
        #: the muted, with when the mute ends (None: at ``unmute``).
        self.operators: set[str] = set()
        self.muted: dict[str, float | None] = {}
        #: ``/moderate``: only operators and the voiced (name keys) speak; raised hands,
        #: first raised first, by name key (as shown).
        self.moderated = False
        self.voiced: set[str] = set()
        self.hands: dict[str, str] = {}
        #: Someone here may not speak (a mute, or moderated): the hot path's one test.
        self.restricted = False
        #: Operators stay operators when they leave (claimed names: nobody else can be them).
        self._keep_operators = keep_operators
        self._announce_limit = announce_limit
        self._server = server
        self._dirty = dirty
        #: This iteration's broadcasts in version 2, and in each other dialect present.
        self._outbox: list[bytes] = []
        self._dialects: dict[str, _Outbox] = {}

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.members)} members, seq={self.seq})"

    def outbox_for(self, dialect: Dialect) -> list[bytes]:
        """This iteration's broadcasts, encoded for members reading ``dialect``."""
        if dialect is V2:
            return self._outbox
        return self._dialects[dialect.key].items

    def names(self) -> list[str]:
        """Who is here, the longest present first, at most ``WELCOME_NAMES`` of them."""
        return [m.name for m in islice(self.members, WELCOME_NAMES)]

    def roster(self, newcomer: Member | None = None) -> tuple[list[str], int]:
        """Who is here (some names, and how many), on every server of the cluster;
        ``newcomer`` (just in) is not also counted where it was before a takeover."""
        names = self.names()
        if self._relay is None:
            return names, len(self.members)
        room, relay = self.name, self._relay
        skip = newcomer.key if newcomer is not None else None
        if len(names) < WELCOME_NAMES:
            more = relay.remote(room, WELCOME_NAMES - len(names), skip)
            names += [name for name, _, _ in more]
        return names, len(self.members) + relay.remote_count(room, skip)

    def join_cluster(self, relay: Cluster) -> None:
        """From now on this room's events go through ``relay`` (before anyone is in)."""
        self._relay = relay
        self.seq = relay.seq(self.name, self.seq)

    # what happens in a room

    def enter(self, member: Member, now: float, history: int = 0, mark: int | None = None) -> None:
        """``member`` comes in: it gets the room's state (a version-1 member: its welcome)
        and up to ``history`` past messages, then everyone, the newcomer included, its
        ``join``. ``mark``: the member's read mark here, which says what is new."""
        dialect = member.dialect
        if dialect is not V2:
            outbox = self._dialects.get(dialect.key)
            if outbox is None:
                outbox = self._dialects[dialect.key] = _Outbox(dialect, len(self._outbox))
            outbox.members += 1
        self.members[member] = None
        member.entered(self, len(self._outbox))
        names, online = self.roster(member)
        if member.version == 1:
            welcome = v1.Welcome(v1.VERSION, member.name, names, self._server, self.seq, online)
            member.tell(welcome)
        else:
            past, unread, more = self._past(history, mark)
            state = RoomState(
                self.name, self.seq, names, online, self.topic, len(past), unread, more
            )
            member.tell(state, *past)
        if self._relay is not None:
            self._relay.came(self.name, member, now)  # told when it comes back
        elif self._announced():
            self._broadcast(Joined(self._next_seq(), now, member.name, self.name))
            if dialect.hides_own_presence:  # its room state said it
                member.skip_last(self)

    def _past(self, history: int, mark: int | None) -> tuple[list[Message], int, int]:
        """The messages to replay, how many of the last are unread, how many unread more.

        Without a read mark: the last ``history``. With one: every message after it (up
        to ``MAX_HISTORY``), after enough read ones to make ``history`` in all.
        """
        if not history or self._history is None:
            return [], 0, 0
        if mark is None:
            return self._history.recent(self.name, history), 0, 0
        new = self._history.count_after(self.name, mark)
        shown = min(new, MAX_HISTORY)
        past = self._history.recent(self.name, max(history, shown))
        return past, min(shown, len(past)), new - min(shown, len(past))

    def say(self, member: Member, text: str, now: float, id: str | None, action: bool) -> None:
        if self._relay is not None:
            message = Message(0, now, member.name, text, self.name, id, action)
            self._relay.said(self.name, message)
            return
        self.messages += 1
        message = Message(self._next_seq(), now, member.name, text, self.name, id, action)
        if self._history is not None:
            self._history.add(message)
        self._broadcast(message)
        if member.dialect.hides_own_messages:
            member.skip_last(self)

    def announce(
        self, by: str, event: str, target: str | None, text: str, now: float, id: str | None
    ) -> None:
        """An operator's action, told to everyone as ``by``'s action, and kept."""
        topic = self.topic if event == "topic" else None
        if self._relay is not None:
            message = Message(0, now, by, text, self.name, id, True, False, event, target, topic)
            self._relay.said(self.name, message)
            return
        seq = self._next_seq()
        message = Message(seq, now, by, text, self.name, id, True, False, event, target, topic)
        if self._history is not None:
            self._history.add(message)
        self._broadcast(message)

    def part(self, member: Member, now: float, reason: str | None = None) -> None:
        """``member`` leaves the room but not the server; it is told either way."""
        if self._relay is not None:
            member.tell(Parted(now, member.name, self.name, None, reason))
            self._relay.went(self.name, member, now, False, reason)
        elif self._announced():
            parted = Parted(now, member.name, self.name, self._next_seq(), reason)
            self._broadcast(parted)
            if member.dialect.hides_own_presence:
                member.skip_last(self)
                member.tell(parted)
        else:
            member.tell(Parted(now, member.name, self.name, None, reason))
        self._remove(member)

    def leave(self, member: Member, reason: Reason, now: float, announce: bool = True) -> bool:
        """``member``'s connection ended; the others are told (not during a shutdown).
        Whether they were."""
        if self._relay is not None:  # told when it comes back, shutdown or not
            self._relay.went(self.name, member, now, True, reason)
            self._remove(member)
            return False
        told = announce and self._announced()
        if told:
            self._broadcast(Left(self._next_seq(), now, member.name, reason, self.name))
        self._remove(member)
        return told

    def hears_once(self) -> list[Member]:
        """Members told of a leave or a nick change once per person, not once per room
        (``Dialect.once_per_person``): the hub tells them."""
        if not any(o.dialect.once_per_person for o in self._dialects.values()):
            return []
        return [m for m in self.members if m.dialect.once_per_person]

    def rename(self, member: Member, old: str, now: float) -> bool:
        """Tell the room that ``old`` is now ``member.name``; False if it passed quietly."""
        was = name_key(old)
        if was != member.key:  # the new name keeps its standing
            for keys in (self.operators, self.muted, self.voiced):
                if was in keys:
                    _move(keys, was, member.key)
            if self.hands.pop(was, None) is not None:
                self.hands[member.key] = member.name
        if not self._announced() or self._relay is not None:
            return False
        self._broadcast(NickChanged(now, old, member.name, self.name, self._next_seq()))
        if member.dialect.hides_own_presence:  # told once, by the hub
            member.skip_last(self)
        return True

    # moderation: who may, who may not speak

    def set_topic(self, topic: str | None) -> None:
        self.topic = topic
        if self._history is not None:
            self._history.set_topic(self.name, topic)

    def set_operator(self, key: str, operator: bool) -> None:
        if operator:
            self.operators.add(key)
        else:
            self.operators.discard(key)

    def mute(self, key: str, until: float | None) -> None:
        self.muted[key] = until
        self.restricted = True

    def unmute(self, key: str) -> None:
        self.muted.pop(key, None)
        self.restricted = self.moderated or bool(self.muted)

    def moderate(self, on: bool) -> None:
        self.moderated = on
        self.restricted = on or bool(self.muted)
        if not on:
            self.hands.clear()

    def voice(self, key: str, voiced: bool) -> None:
        if voiced:
            self.voiced.add(key)
            self.hands.pop(key, None)
        else:
            self.voiced.discard(key)

    def raise_hand(self, member: Member, up: bool) -> int:
        """``member``'s hand goes up (or down); its place in the queue, from 1 (0: down)."""
        if not up:
            self.hands.pop(member.key, None)
            return 0
        self.hands.setdefault(member.key, member.name)
        return list(self.hands).index(member.key) + 1

    def silenced(self, key: str, now: float) -> bool:
        """Whether ``key`` is muted here now (a mute past its end is dropped)."""
        if key not in self.muted:
            return False
        until = self.muted[key]
        if until is not None and until <= now:
            self.unmute(key)
            return False
        return True

    # fan-out

    def deliver(self, event: RoomEvent, own: Member | None) -> None:
        """An event of this room, back from the cluster with its ``seq``: kept, then
        broadcast. ``own``: the member here whose event it is, if any."""
        seq = event.seq
        if seq is not None and seq > self.seq:
            self.seq = seq
        if event.__class__ is Message:
            self.messages += 1
            if self._history is not None:
                self._history.add(event)
        self._broadcast(event)
        if own is not None and own in self.members:
            dialect = own.dialect
            if (
                dialect.hides_own_messages
                if event.__class__ is Message
                else dialect.hides_own_presence
            ):
                own.skip_last(self)

    def flush(self) -> None:
        """Once per loop iteration: this iteration's broadcasts to every member."""
        items = self._outbox
        if not items:
            return
        self._outbox = []
        self.deliveries += len(items) * len(self.members)
        blob = b"".join(items)
        if not self._dialects:
            Member.share_all(list(self.members), self, blob, items)
            return
        shared: dict[str, tuple[bytes, list[bytes]]] = {V2.key: (blob, items)}
        for key, outbox in self._dialects.items():
            shared[key] = (b"".join(outbox.items), outbox.items)
            outbox.items = []
        for member in list(self.members):
            member.share(self, *shared[member.dialect.key])

    def _broadcast(self, event: RoomEvent) -> None:
        if not self._outbox:
            self._dirty(self)
        if self._dialects:  # no JSON when no member reads it
            others = 0
            for outbox in self._dialects.values():
                outbox.items.append(outbox.dialect.event(event))
                others += outbox.members
            self._outbox.append(encode(event) if others < len(self.members) else b"")
        else:
            self._outbox.append(encode(event))

    def _announced(self) -> bool:
        """Whether a join or leave in a room of this size is told to everyone."""
        return len(self.members) <= self._announce_limit

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _remove(self, member: Member) -> None:
        member.left(self)
        del self.members[member]
        dialect = member.dialect
        if dialect is not V2:
            outbox = self._dialects[dialect.key]
            outbox.members -= 1
            if not outbox.members:
                del self._dialects[dialect.key]
        self.hands.pop(member.key, None)
        if not self._keep_operators:
            self.operators.discard(member.key)


def _move(keys: set[str] | dict[str, float | None], old: str, new: str) -> None:
    """A renamed member's entry, from its old name key to its new one."""
    if isinstance(keys, set):
        keys.discard(old)
        keys.add(new)
    else:
        keys[new] = keys.pop(old)
