"""The hub: every session, every member by name, every room by name; flush, sweep, stop.

Sessions hand it their frames (``received``); what each frame does in the chat is
``chatctl.server.chat``. Everything runs on one event loop, so the order in which
a room queues its events is the order every member, the sender included, receives.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from typing import TYPE_CHECKING

from chatctl import __version__
from chatctl.limits import Refusal
from chatctl.protocol import (
    DEFAULT_ROOM,
    ClientFrame,
    ErrorCode,
    LeaveReason,
    Left,
    NickChanged,
    Phase,
    ProtocolError,
    Reason,
    Say,
    Shutdown,
    StatusReply,
    check_allowed,
    name_key,
)
from chatctl.server import chat, report
from chatctl.server.admission import Admission
from chatctl.server.backplane import BackplaneError
from chatctl.server.bans import Bans
from chatctl.server.claims import Claims
from chatctl.server.config import ServerConfig
from chatctl.server.events import (
    Closed,
    HistoryFailed,
    HistoryOpened,
    Observer,
    OperatorsFailed,
    OperatorsLoaded,
    Refused,
    RoomEntered,
    RoomParted,
    SearchFailed,
    Stopping,
    UserLeft,
    ignore,
)
from chatctl.server.flush import Flush
from chatctl.server.history import History
from chatctl.server.member import Member
from chatctl.server.operators import Operators, OperatorsError
from chatctl.server.records import Records
from chatctl.server.room import Room
from chatctl.server.search import SearchIndex
from chatctl.server.session import Session

if TYPE_CHECKING:
    from chatctl.server.backplane.link import Link
    from chatctl.server.cluster import Cluster

#: Endings of connections that never joined (or no longer have) that are not worth a log
#: line or a count: a status query that hung up, a refused handshake (logged as Refused
#: already), a replaced member.
_UNREMARKABLE = frozenset(
    {
        LeaveReason.DROPPED,
        LeaveReason.QUIT,
        LeaveReason.REFUSED,
        LeaveReason.SHUTDOWN,
        ErrorCode.REPLACED,  # counted and logged when it was replaced
        ErrorCode.BANNED,  # likewise, when it was banned
        ErrorCode.KICKED,
    }
)


class Hub:
    """Sessions, members and rooms of one server, and the loop-iteration flush."""

    def __init__(
        self, config: ServerConfig, observer: Observer = ignore, tls: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.observer = observer
        #: Connections are upgraded to TLS with this context, if given.
        self.tls = tls
        self.admission = Admission(config)
        self.server_label = f"chatctl {__version__}"
        self.started_at = time.time()
        self.connections: set[Session] = set()
        #: Joined members by name key, in the order they joined.
        self.members: dict[str, Member] = {}
        self.rooms: dict[str, Room] = {}
        #: The history file and what is kept in it (``open_history``).
        self.records = Records()
        #: The server's operators (``load_operators``), and what operators did lately.
        self.operators = Operators(config.operators, config.ops_file)
        self.messages_relayed = 0
        self.leave_reasons: Counter[str] = Counter()
        self._by_session: dict[Session, Member] = {}
        #: What this loop iteration queued, kept and written at its end.
        self._flush = Flush(self.records)
        self._all_gone = asyncio.Event()
        #: The servers this one shares rooms with (``--backplane``), once joined.
        self.cluster: Cluster | None = None
        #: Connections whose hello waits for the cluster's word on the name, and the
        #: frames they sent meanwhile (handled after it).
        self._greeting: dict[Session, list[ClientFrame]] = {}
        self._room(DEFAULT_ROOM)  # always there, even empty

    @property
    def history(self) -> History | None:
        return self.records.history

    @property
    def claims(self) -> Claims | None:
        return self.records.claims

    @property
    def search(self) -> SearchIndex | None:
        return self.records.search

    @property
    def bans(self) -> Bans:
        return self.records.bans

    def open_history(self) -> None:
        """Open the configured history file (HistoryError if it cannot be used)."""
        path = self.config.history
        if path is None or self.history is not None:
            return
        history = self.records.open(
            path,
            lambda message: self.observer(HistoryFailed(message)),
            lambda message: self.observer(SearchFailed(message)),
        )
        self.rooms.clear()
        self._room(DEFAULT_ROOM)  # its seq continues from the file's
        self.observer(HistoryOpened(path, history.messages))

    def load_operators(self) -> None:
        """Read the server's operators (OperatorsError if they cannot be used): after
        ``open_history``, as an operator's name means something only when claimed."""
        count = self.operators.load()
        if count and self.claims is None:
            raise OperatorsError(
                "server operators (--op, --ops-file) need claimed names, which need "
                "history: drop --no-history, or give --history PATH"
            )
        if count:
            self.observer(OperatorsLoaded(self.operators.names))

    def reload_operators(self) -> None:
        """SIGHUP: read the ops file again; if it cannot be, the operators stay as they were."""
        try:
            self.operators.load()
        except OperatorsError as exc:
            self.observer(OperatorsFailed(str(exc)))
            return
        self.observer(OperatorsLoaded(self.operators.names))

    async def join_cluster(self, url: str, port: int) -> None:
        """Share rooms with the servers on ``url`` (BackplaneError if it cannot be used)."""
        try:
            from chatctl.server.cluster import Cluster
        except ImportError as exc:  # redis-py is an extra
            raise BackplaneError(
                f"--backplane needs redis-py ({exc.name} is missing): pip install 'chatctl[redis]'"
            ) from None
        cluster = Cluster(self, url, port)
        await cluster.start()
        self.cluster = cluster
        cluster.back()
        for room in self.rooms.values():
            room.join_cluster(cluster)

    async def leave_cluster(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()

    @property
    def backplane(self) -> Link | None:
        """The link to Redis, for metrics (lag, reconnects); None: no cluster."""
        return self.cluster.link if self.cluster is not None else None

    def close_history(self) -> None:
        self.records.close()

    @property
    def stopping(self) -> bool:
        return self.admission.stopping

    # SessionHost: what sessions call

    def admit(self, session: Session) -> Refusal | None:
        """Take a new connection in, or say why not (counted and logged here)."""
        refusal = self.admission.admit(session.host, len(self.connections))
        if refusal is not None:
            self.refused(session, refusal.code)
            return refusal
        self.connections.add(session)
        return None

    def sending(self, session: Session) -> None:
        """``session`` queues a frame of its own (an error, a ping): the rooms' first."""
        member = self._by_session.get(session)
        if member is not None:
            member.catch_up()

    def received(self, session: Session, frame: ClientFrame) -> None:
        member = self._by_session.get(session)
        if member is not None and frame.__class__ is Say and not self._greeting:  # hot path
            try:
                chat.say(self, member, frame)
            except ProtocolError as exc:
                session.send_error(exc, frame.id, frame.room)
            return
        if self._greeting and session in self._greeting:
            self._greeting[session].append(frame)  # after the cluster's word on its name
            return
        phase = Phase.CHATTING if member is not None else Phase.GREETING
        refusal = check_allowed(phase, member.version if member else 1, frame)
        if refusal is not None:
            session.send_error(refusal, getattr(frame, "id", None))
            return
        chat.handle(self, session, member, frame)

    def queued(self, session: Session) -> None:
        self._flush.session(session)

    def writing(self) -> None:
        """A session writes before the flush (it is closing): what it shows is kept first."""
        self._flush.early()

    def ended(self, session: Session, reason: Reason) -> None:
        self.connections.discard(session)
        self.admission.release(session.host)
        if not self.connections:
            self._all_gone.set()
        self._greeting.pop(session, None)
        member = self._by_session.pop(session, None)
        if member is None:
            if reason not in _UNREMARKABLE:
                self.leave_reasons[reason] += 1
                self.observer(Closed(session.address, reason))
            return
        self._remove(member, reason)

    def replace(self, member: Member, by: str) -> None:
        """``member``'s name joined again with its secret, from ``by``: the old connection
        leaves now, so the name is free at once."""
        message = f"{member.name} joined again from {by}: this connection is closed"
        self.dismiss(member, ProtocolError(ErrorCode.REPLACED, message))

    def dismiss(self, member: Member, error: ProtocolError) -> None:
        """Close ``member``'s connection with ``error`` as its last frame; it leaves now
        (its end, later, is unremarkable), with the error's code as the reason."""
        member.session.dismiss(error)
        del self._by_session[member.session]
        self._remove(member, error.code)

    def _remove(self, member: Member, reason: Reason) -> None:
        del self.members[member.key]
        self.leave_reasons[reason] += 1
        now = time.time()
        if self.claims is not None:
            self.claims.used(member.name, now)  # a claim expires a retention after its last use
        told = []
        for room in list(member.rooms.values()):
            if room.leave(member, reason, now, announce=not self.stopping):
                told.append(room)
            self._forget_if_empty(room)
        self.tell_once(told, Left(0, now, member.name, reason), member)
        if self.cluster is not None:
            self.cluster.offline(member)
        self.observer(UserLeft(member.name, member.session.address, reason))

    def tell_once(self, rooms: list[Room], frame: Left | NickChanged, who: Member) -> None:
        """``who`` left or changed name in ``rooms``: members whose dialect hears that once
        per person (IRC's QUIT and NICK), not once per room, are told here, once each."""
        told: set[Member] = {who}
        for room in rooms:
            for other in room.hears_once():
                if other not in told:
                    told.add(other)
                    other.tell(frame)

    # what the chat rules call

    def refused(self, session: Session, code: Reason) -> None:
        """Count and log a refused handshake (the session says why to the client)."""
        self.leave_reasons[code] += 1
        self.observer(Refused(session.address, code))

    def member(self, name: str) -> Member | None:
        return self.members.get(name_key(name))

    def add_member(self, member: Member) -> None:
        self.members[member.key] = member
        self._by_session[member.session] = member

    def rename_member(self, member: Member, new: str) -> None:
        """Hold ``member`` under its new name (checked free by the caller)."""
        del self.members[member.key]
        member.renamed(new)
        self.members[member.key] = member

    def enter(self, member: Member, name: str, history: int = 0) -> None:
        """Put ``member`` in room ``name`` (canonical), creating the room if need be;
        ``history``: how many past messages to give them."""
        created = name not in self.rooms
        room = self._room(name)
        if not room.members and self._founds(name):
            room.set_operator(member.key, True)
        reader = self.reader(member)
        mark = None
        if reader is not None and self.history is not None:
            mark = self.history.read_mark(reader, name)
        room.enter(member, time.time(), history, mark)
        if reader is not None and mark is None:
            # First time here: what comes next is what is new if they leave (a room
            # that was empty when they were in it has something "since you left" too).
            self.read(member, room, room.seq)
        self.observer(RoomEntered(member.name, name, created))

    def _founds(self, room: str) -> bool:
        """Whether the first one into ``room`` becomes its operator: yes, unless
        ``--no-room-founders``; ``#lobby`` is the server operators' when there are any."""
        if not self.config.room_founders:
            return False
        if self.cluster is not None and self.cluster.remote_count(room):
            return False  # not the first into a room that is in use on another server
        return room != DEFAULT_ROOM or not self.operators

    def reader(self, member: Member) -> str | None:
        """Whose read marks ``member``'s are: a claimed name's (every version-2 member of a
        server with claims holds one, but IRC's), else nobody's."""
        if self.claims is None or member.version < 2 or not member.dialect.claims:
            return None
        return member.key

    def read(self, member: Member, room: Room, seq: int) -> None:
        """``member`` has been shown ``room`` up to ``seq``: its read mark moves (at the flush)."""
        reader = self.reader(member)
        if reader is not None and self.history is not None:
            self.history.read(reader, room.name, min(seq, room.seq))
            if self.cluster is not None:
                self.cluster.read(reader, room.name, min(seq, room.seq))
            self._flush.touch()

    def _room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = Room(
                name,
                self.config.announce_limit,
                self.server_label,
                self._flush.room,
                self.history,
                keep_operators=self.claims is not None,
                relay=self.cluster,
            )
            self.rooms[name] = room
        return room

    def part(self, member: Member, room: Room, reason: str | None = None) -> None:
        room.part(member, time.time(), reason)
        self._forget_if_empty(room)
        self.observer(RoomParted(member.name, room.name))

    def _forget_if_empty(self, room: Room) -> None:
        """An empty room is forgotten, but for ``#lobby``: version-1 clients number its
        events from one counter for as long as the server runs."""
        if not room.members and room.name != DEFAULT_ROOM and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            if self.history is not None:  # one made again before the flush goes on from it
                self.history.mark(room.name, room.seq)

    def count_message(self) -> None:
        self.messages_relayed += 1

    # the cluster

    def hold(self, session: Session) -> None:
        """``session``'s hello or nick waits for the cluster: what it sends meanwhile waits too."""
        self._greeting[session] = []

    def release(self, session: Session) -> list[ClientFrame] | None:
        """The cluster answered: the frames ``session`` sent meanwhile (None: it is gone)."""
        return self._greeting.pop(session, None)

    def touch(self) -> None:
        """Something to commit (the cluster's cursor), though perhaps nothing to send."""
        self._flush.touch()

    # queries

    def status(self) -> StatusReply:
        return report.status(self)

    # shutdown

    async def shut_down(self, grace: float) -> None:
        """Tell everyone, give them ``grace`` seconds to go, then abort the rest."""
        self.admission.stop()
        self.observer(Stopping(users=len(self.members)))
        notice = Shutdown(reason="server shutting down")
        for session in list(self.connections):
            member = self._by_session.get(session)
            if member is not None:
                member.tell(notice)
            else:
                session.tell(notice)
            session.close(LeaveReason.SHUTDOWN)
        if self.connections:
            self._all_gone.clear()
            try:
                await asyncio.wait_for(self._all_gone.wait(), grace)
            except TimeoutError:
                for session in list(self.connections):
                    session.abort(LeaveReason.SHUTDOWN)
                await asyncio.sleep(0)  # let connection_lost run for the aborted
