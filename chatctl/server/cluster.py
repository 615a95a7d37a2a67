"""The hub's side of the backplane: what this server publishes, and what it reads back.

With ``--backplane``, rooms do not broadcast their own events: they hand them
here (``said``, ``came``, ``went``), and the link publishes them in one batch per
iteration. Every event then comes back from the stream, this server's own among
the others, with its room's ``seq`` (``entries``): it is kept in history (with the
cursor, in the same transaction), the mirror of who is where is updated, and the
room, if anyone here is in it, broadcasts it. So every member of a room, on any
server, sees one order (docs/design.md, "The backplane").
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatctl.protocol import (
    Error,
    ErrorCode,
    Joined,
    Left,
    Message,
    NickChanged,
    Parted,
    Private,
    ProtocolError,
    RoomEvent,
    name_key,
)
from chatctl.server import moderation
from chatctl.server.backplane.link import Entry, Link, Snapshot
from chatctl.server.backplane.ops import (
    AwaySet,
    Banned,
    Came,
    Claimed,
    Direct,
    Forgot,
    Kicked,
    Offline,
    Online,
    Op,
    ReadTo,
    Renamed,
    Ruled,
    Said,
    Unbanned,
    Went,
)
from chatctl.server.backplane.presence import Presence
from chatctl.server.claims import digest
from chatctl.server.events import BackplaneDown, BackplaneGap, BackplaneUp, ServerGone
from chatctl.server.member import Member

if TYPE_CHECKING:  # the hub makes the cluster
    from chatctl.server.hub import Hub

#: Seconds between two "Redis is away" notices to the clients.
NOTICE_EVERY = 30.0

#: A verdict on a name (hello, nick): True if it is ours now.
Verdict = Callable[[bool], None]


def server_name(port: int, worker: int | None = None) -> str:
    """How other servers and ``status`` call this one: host and port (no spaces), and
    ``/wN`` for worker N of ``serve --workers`` (the workers share the port)."""
    name = f"{socket.gethostname().split('.')[0] or 'chatctl'}:{port}".replace(" ", "_")
    return name if worker is None else f"{name}/w{worker}"


class Cluster:
    """This server's part of a cluster of servers sharing rooms through Redis."""

    def __init__(self, hub: Hub, url: str, port: int) -> None:
        self.hub = hub
        self.name = server_name(port, hub.config.worker)
        #: Unique to this run of this server: a restart is another server to the others.
        self.origin = f"{self.name}/{secrets.token_hex(4)}"
        self.presence = Presence()
        #: Each room's last ``seq`` read from the stream (rooms nobody here is in too).
        self.seqs: dict[str, int] = {}
        self._verdicts: dict[str, Verdict] = {}
        #: The time of the stream entry being read.
        self._now = 0.0
        #: IRC members told of someone's quit in this reply (once per person).
        self._told: dict[str, set[Member]] = {}
        epoch = cursor = None
        if hub.history is not None:
            saved = hub.history.cursor()
            if saved is not None:
                epoch, cursor = saved
        self.link = Link(url, self.origin, hub.config.announce_limit, self, cursor, epoch)
        #: When clients were last told that Redis is away.
        self._told_down = -NOTICE_EVERY

    async def start(self) -> None:
        await self.link.start()

    async def close(self) -> None:
        await self.link.close()

    @property
    def up(self) -> bool:
        return self.link.up

    def seq(self, room: str, local: int) -> int:
        return max(self.seqs.get(room, 0), local)

    def check_open(self) -> None:
        """Refuse a message while Redis has been away too long to hold more."""
        if self.link.full:
            raise ProtocolError(
                ErrorCode.BACKPLANE_DOWN,
                "not sent: this server has lost its backplane (Redis) and holds no more",
            )

    # what rooms and the hub publish

    def said(self, room: str, message: Message) -> None:
        m = message
        op = Said(room, m.name, m.text, m.time, m.id, m.action, m.event, m.target, m.topic)
        self.link.add(op, name_key(m.name))

    def came(self, room: str, member: Member, now: float, quiet: bool = False) -> None:
        self.link.add(Came(room, member.name, now, quiet), member.key)

    def went(self, room: str, member: Member, now: float, left: bool, reason: str | None) -> None:
        self.link.add(Went(room, member.name, now, left, reason), member.key)

    def online(self, name: str, irc: bool, takeover: bool, verdict: Verdict) -> None:
        """Ask for ``name`` cluster-wide; ``verdict`` is called when the stream answers.
        ``takeover``: its owner (the claim's secret given) takes it from wherever it is.
        A name already asked for here, by another connection, is not ours."""
        key = name_key(name)
        if key in self._verdicts:
            verdict(False)
            return
        self._verdicts[key] = verdict
        self.link.add(Online(name, self.origin, irc, takeover), key)

    def offline(self, member: Member) -> None:
        self.link.add(Offline(member.name, self.origin), member.key)

    def offline_name(self, name: str) -> None:
        """A name given to a connection that went before it could use it."""
        self.link.add(Offline(name, self.origin), name_key(name))

    def rename(self, member: Member, new: str, now: float, verdict: Verdict) -> None:
        key = name_key(new)
        if key in self._verdicts:
            verdict(False)
            return
        self._verdicts[key] = verdict
        op = Renamed(member.name, new, self.origin, list(member.rooms), now)
        self.link.add(op, member.key)

    def claimed(self, name: str, secret: str, now: float) -> None:
        """A name was claimed here: every server keeps the claim (its secret's hash)."""
        self.link.add(Claimed(name, digest(secret).hex(), now), name_key(name))

    def publish(self, op: Op, key: str) -> None:
        """An op the hub's rules made (moderation's), applied by every server as it reads it."""
        self.link.add(op, key)

    def forgot(self, name: str) -> None:
        self.link.add(Forgot(name), name_key(name))

    def read(self, reader: str, room: str, seq: int) -> None:
        """A read mark moved here: it moves on every server (a client may come back to any)."""
        self.link.add(ReadTo(reader, room, seq), reader)

    def away(self, member: Member) -> None:
        self.link.add(AwaySet(member.name, member.away), member.key)

    def direct(self, sender: Member, private: Private) -> None:
        p = private
        op = Direct(p.name, p.to, p.text, p.time, p.id, p.action)
        self.link.add(op, sender.key)

    # who is where

    def remote(
        self, room: str, limit: int | None = None, skip: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """The people in ``room`` on other servers: name, server as shown, away text."""
        found = self.presence.others(room, self.origin, limit, skip)
        return [(name, _shown(server), away) for name, server, away in found]

    def remote_count(self, room: str, skip: str | None = None) -> int:
        return self.presence.others_count(room, self.origin, skip)

    @staticmethod
    def shown(origin: str) -> str:
        return _shown(origin)

    def room_names(self) -> set[str]:
        return set(self.presence.rooms)

    # Sink: what the link calls

    def entries(self, entries: list[Entry], cursor: str) -> None:
        hub = self.hub
        history = hub.history
        for entry, origin, ops in entries:
            # Stamped with Redis's clock, the entry's: times follow the stream's order.
            self._now = int(entry.partition("-")[0]) / 1000
            for op, result in ops:
                try:
                    self._apply(op, result, origin)
                except Exception as exc:  # one bad op must not stop the stream's reading
                    # Names only: an op may hold a private message, which is never logged.
                    kind, error = op.__class__.__name__, exc.__class__.__name__
                    self.broken(f"entry {entry} from {origin}: {kind} not applied ({error})")
            if history is not None:  # a commit between two entries is a consistent one
                history.set_cursor(self.link.epoch or "", entry)
        self._told.clear()
        hub.touch()

    def _apply(self, op: object, result: list[int], origin: str) -> None:
        seq = result[0]
        hub = self.hub
        mine = origin == self.origin
        match op:
            case Said(room=room):
                self.seqs[room] = seq
                message = Message(
                    seq,
                    self._now,
                    op.name,
                    op.text,
                    room,
                    op.id,
                    op.action,
                    False,
                    op.event,
                    op.target,
                    op.topic,
                )
                own = hub.members.get(name_key(op.name)) if mine else None
                self._deliver(room, message, own)
            case Came(room=room, name=name):
                if op.quiet:  # told again after a gap; 1 if the name was still ours
                    if seq:
                        self.presence.came(room, name, origin)
                    return
                self.presence.came(room, name, origin)
                if seq > 0:
                    self.seqs[room] = seq
                    own = hub.members.get(name_key(name)) if mine else None
                    self._deliver(room, Joined(seq, self._now, name, room), own)
            case Went(room=room, name=name):
                server = op.server or origin
                self.presence.went(room, name, server)
                if server == self.origin and not mine:
                    return  # Redis gave us up for dead: ours are here still, told again
                if seq > 0:
                    self.seqs[room] = seq
                    frame: Parted | Left
                    if op.left:
                        frame = Left(seq, self._now, name, op.reason or "quit", room)
                    else:
                        frame = Parted(self._now, name, room, seq, op.reason)
                    self._deliver(room, frame, None)
                    if op.left:
                        self._tell_once(room, name, Left(0, self._now, name, op.reason or "quit"))
            case Online(name=name, server=server):
                key = name_key(name)
                verdict = self._verdicts.pop(key, None) if mine else None
                held = hub.members.get(key)
                if seq >= 0:
                    self.presence.online(name, server, op.irc)
                    if op.takeover and not mine and held is not None:  # its owner is back
                        hub.replace(held, _shown(server))
                elif mine and verdict is None and held is not None:
                    # Told again after a gap, and the name is someone else's by now.
                    taken = "this name was given to someone on another server meanwhile"
                    hub.dismiss(held, ProtocolError(ErrorCode.NAME_TAKEN, taken))
                if verdict is not None:
                    verdict(seq >= 0)
            case Offline(name=name, server=server):
                self.presence.offline(name, server)
            case Renamed(old=old, new=new):
                verdict = self._verdicts.pop(name_key(new), None) if mine else None
                if verdict is not None:  # renamed here first: its own event is skipped
                    verdict(seq >= 0)
                if seq >= 0:
                    self.presence.renamed(old, new, op.server)
                    own = hub.members.get(name_key(new)) if mine else None
                    told: set[Member] = {own} if own is not None else set()
                    for room, room_seq in zip(op.rooms, result, strict=False):
                        if room_seq > 0:
                            self.seqs[room] = room_seq
                            changed = NickChanged(self._now, old, new, room, room_seq)
                            self._deliver(room, changed, own)
                            self._tell_once(room, new, NickChanged(self._now, old, new), told)
            case AwaySet(name=name, text=text):
                self.presence.set_away(name, text)
            case Claimed(name=name) if not mine and hub.claims is not None:
                hub.claims.adopt(name, bytes.fromhex(op.hashed), op.time)
            case Forgot(name=name) if not mine and hub.claims is not None:
                hub.claims.drop(name)
            case ReadTo(reader=reader, room=room, seq=read) if not mine:
                if hub.history is not None:
                    hub.history.room_seq(room)  # its row, if nobody here was ever in it
                    hub.history.read(reader, room, read)
            case Banned() | Unbanned() | Kicked() | Ruled() if not mine:
                moderation.applied(hub, op)
            case Direct(to=to):
                target = hub.members.get(name_key(to))
                if target is not None and not mine and target.version >= 2:
                    target.tell(Private(op.time, op.name, to, op.text, op.id, op.action))

    def _deliver(self, name: str, event: RoomEvent, own: Member | None) -> None:
        """An event of room ``name`` read back: to the room if anyone here is in it, else
        only to the history (every server keeps every room's)."""
        hub = self.hub
        room = hub.rooms.get(name)
        if room is not None:
            room.deliver(event, own)
        elif hub.history is not None:
            hub.history.keep(name, event)
        if event.__class__ is Message and event.event == "topic":
            if room is not None:
                room.set_topic(event.topic)
            elif hub.history is not None:
                hub.history.set_topic(name, event.topic)

    def _notice_all(self, code: ErrorCode, text: str) -> None:
        """Tell every member something about the server itself (not about their input)."""
        notice = Error(code.value, text)
        for member in list(self.hub.members.values()):
            member.tell(notice)

    def _tell_once(
        self, room: str, name: str, frame: Left | NickChanged, told: set[Member] | None = None
    ) -> None:
        """IRC hears a quit or a nick once per person, not once per room (``hears_once``)."""
        here = self.hub.rooms.get(room)
        if here is None:
            return
        told = told if told is not None else self._told.setdefault(name_key(name), set())
        for member in here.hears_once():
            if member not in told:
                told.add(member)
                member.tell(frame)

    def identity(self) -> str:
        """The cluster's identity this server proposes, if the cluster has none yet:
        the one it knew (Redis lost its data), or its own."""
        if self.hub.claims is not None:
            return self.hub.claims.server_id
        return self.origin

    def restart(self, snapshot: Snapshot, why: str | None) -> None:
        """From a snapshot: at the start, or after a gap (``why``)."""
        if self.hub.claims is not None:
            self.hub.claims.share(snapshot.identity)
        self.presence.load(snapshot.users, snapshot.away, snapshot.rooms)
        self.seqs.update(snapshot.seqs)
        if why is not None:
            self.hub.observer(BackplaneGap(why))
            self._notice_all(ErrorCode.BACKPLANE_GAP, why)
            self.given_up()  # Redis may have forgotten us: say again who is here

    def seeds(self) -> dict[str, int]:
        seeds = dict(self.seqs)
        for here in self.hub.rooms.values():
            seeds[here.name] = max(here.seq, seeds.get(here.name, 0))
        if self.hub.history is not None:
            for room, seq in self.hub.history.room_seqs().items():
                seeds[room] = max(seq, seeds.get(room, 0))
        return {room: seq for room, seq in seeds.items() if seq > 0}

    def lost(self, why: str) -> None:
        self.hub.observer(BackplaneDown(self.link.url, why))
        now = time.monotonic()
        if now - self._told_down < NOTICE_EVERY:  # once, not at each try of a flapping Redis
            return
        self._told_down = now
        self._notice_all(
            ErrorCode.BACKPLANE_DOWN,
            "this server lost its backplane (Redis): what you send is held until it is back",
        )

    def broken(self, why: str) -> None:
        """Something went wrong in this server's own backplane code: logged, goes on."""
        self.hub.observer(BackplaneGap(f"internal error, going on: {why}"))

    def back(self) -> None:
        self.hub.observer(BackplaneUp(self.link.url))

    def dead(self, server: str, people: int) -> None:
        """Another server stopped beating: this one had Redis take its people out (the
        leaves come through the stream like any)."""
        self.hub.observer(ServerGone(_shown(server), people))

    def given_up(self) -> None:
        """The others took this server for dead (or Redis lost its data): tell it again
        who is here, quietly."""
        now = time.time()
        for member in list(self.hub.members.values()):
            self.link.add(
                Online(member.name, self.origin, member.dialect.key.startswith("irc")), member.key
            )
            for room in member.rooms:
                self.came(room, member, now, quiet=True)

    def servers(self) -> set[str]:
        return self.presence.servers()


def _shown(origin: str) -> str:
    """A server as people see it: its name, without this run's tag."""
    return origin.rpartition("/")[0] or origin
