"""History: every room message in one SQLite file, written before anyone sees it.

The hub adds each message as the room stamps it (``add``) and commits the
iteration's batch in one transaction at the start of its flush, before a single
byte of it is written to a socket: whatever a client saw is in the file, and a
``kill -9`` loses nothing committed (WAL, ``synchronous=NORMAL``; docs/design.md).
A room's last ``seq`` is its newest message's, or its row's, written in the same
transaction when an event that is not kept (a join, a part) came last: no ``seq``
is ever given twice, and most commits write no row.

The file itself (opening, lock, schema) is ``store``'s.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass

from chatctl.protocol import Message, Private, RoomEvent
from chatctl.server import retention
from chatctl.server import statements as sql
from chatctl.server.latency import Latency
from chatctl.server.store import Store

Row = tuple[int, int, float, str, str, str | None, int, str | None, str | None]
PrivateRow = tuple[str, str, float, str, str, str, str | None, int]


@dataclass(frozen=True)
class HistoryStats:
    path: str
    messages: int
    bytes: int
    oldest: float | None


class History:
    """The messages of one server's file: this iteration's pending rows, and queries."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.path
        self._conn = store.conn
        self._room_ids: dict[str, int] = {}
        self._pending: list[Row] = []
        self._private: list[PrivateRow] = []
        self._marks: dict[int, int] = {}
        #: The seq of each room's last message pending, by room id.
        self._kept: dict[int, int] = {}
        #: Each room's last seq given out in this run, by name: a room made again goes on
        #: from it, before the flush saved it or after a failure (one entry a room, as
        #: ``_room_ids``).
        self._known: dict[str, int] = {}
        #: Rooms that may hold more than ``--keep-messages``: those given messages since
        #: retention last found them within it (None: every room, until its first pass).
        self._grown: set[int] | None = None
        #: Topics set this iteration, by room id.
        self._topics: dict[int, str | None] = {}
        #: Read marks moved this iteration, by (name key, room id).
        self._reads: dict[tuple[str, int], int] = {}
        #: The cluster's stream read up to here (epoch, entry id), saved with the rows.
        self._cursor: tuple[str, str] | None = None
        self.messages = self._conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        #: How long each commit took (``serve --metrics``: chatctl_history_write_seconds).
        self.write_latency = Latency()

    @property
    def error(self) -> str | None:
        """Why nothing is kept any more, after a failure (None: all is well)."""
        return self.store.error

    def close(self) -> None:
        """Commit what is pending (the store is closed by its owner)."""
        with contextlib.suppress(sqlite3.Error):
            self.commit()

    # the hot path

    def room_seq(self, room: str) -> int:
        """The last ``seq`` ``room`` gave out, 0 for a new room (whose row this creates)."""
        if self.error is not None:  # the file is not read any more: what this run gave out
            return self._known.get(room, 0)
        try:
            room_id = self._room_ids.get(room)
            if room_id is None:
                room_id = self._room_id(room)
            stored: int = self._conn.execute(sql.ROOM_SEQ, (room_id, room_id)).fetchone()[0]
            seq = max(stored, self._known.get(room, 0))  # given out this run, perhaps not saved
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.path}: {exc}")
            return 0
        return seq

    def add(self, message: Message) -> None:
        """Keep ``message`` (committed at the next ``commit``)."""
        room_id = self._room_ids.get(message.room or "")
        if room_id is None:  # a room made after a failure
            return
        self._kept[room_id] = message.seq
        self._pending.append(
            (
                room_id,
                message.seq,
                message.time,
                message.name,
                message.text,
                message.id,
                int(message.action),
                message.event,
                message.target,
            )
        )

    def add_private(self, private: Private, keys: tuple[str, str]) -> None:
        """Keep ``private``, between the claimed names ``keys`` (committed at ``commit``)."""
        if self.error is None:
            low, high = sorted(keys)
            p = private
            self._private.append((low, high, p.time, p.name, p.to, p.text, p.id, int(p.action)))

    def topic(self, room: str) -> str | None:
        """``room``'s topic as last set (None: none, or a new room)."""
        room_id = self._room_ids.get(room)
        if room_id is None:
            return None
        if room_id in self._topics:
            return self._topics[room_id]
        try:
            row = self._conn.execute("SELECT topic FROM rooms WHERE id = ?", (room_id,)).fetchone()
        except sqlite3.Error:
            return None
        topic: str | None = row[0] if row else None
        return topic

    def set_topic(self, room: str, topic: str | None) -> None:
        """``room``'s topic is now ``topic`` (saved at the next ``commit``)."""
        self.room_seq(room)  # a room of the cluster nobody here is in: its row
        room_id = self._room_ids.get(room)
        if room_id is not None:
            self._topics[room_id] = topic

    # a cluster's (serve --backplane)

    def keep(self, room: str, event: RoomEvent) -> None:
        """An event of a room nobody here is in, from the cluster: its ``seq`` is given
        out, and a message is kept."""
        self.room_seq(room)  # creates the room's row
        if event.seq:
            self.mark(room, event.seq)
        if event.__class__ is Message:
            self.add(event)

    def set_cursor(self, epoch: str, entry: str) -> None:
        """Saved with this iteration's rows: after a crash, the stream is read on from
        exactly what the file holds."""
        self._cursor = (epoch, entry)

    def cursor(self) -> tuple[str, str] | None:
        try:
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'backplane_cursor'"
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or " " not in row[0]:
            return None
        epoch, _, entry = row[0].partition(" ")
        return epoch, entry

    def room_seqs(self) -> dict[str, int]:
        """Every room's last ``seq`` in the file (to raise the cluster's to them)."""
        try:
            rows = self._conn.execute(sql.ROOM_SEQS).fetchall()
        except sqlite3.Error:
            return {}
        return {room: seq for room, seq in rows if seq > 0}

    def mark(self, room: str, seq: int) -> None:
        """``room`` has given out ``seq`` (saved at the next ``commit``)."""
        if seq > self._known.get(room, 0):
            self._known[room] = seq
        room_id = self._room_ids.get(room)
        if room_id is not None:  # never lower: an old room object may flush after a new one
            self._marks[room_id] = max(seq, self._marks.get(room_id, 0))

    def commit(self) -> None:
        """Write this iteration's messages and marks in one transaction.

        On failure the batch is dropped (its messages are delivered anyway) and
        nothing more is kept (``on_error`` is told).
        """
        if self.error is not None or not (
            self._pending
            or self._marks
            or self._reads
            or self._private
            or self._topics
            or self._cursor
        ):
            return
        cursor, self._cursor = self._cursor, None
        rows, marks, reads, private = self._pending, self._marks, self._reads, self._private
        self._pending, self._marks, self._reads, self._private = [], {}, {}, []
        kept, self._kept = self._kept, {}
        topics, self._topics = self._topics, {}
        conn = self._conn
        started = time.perf_counter()
        try:
            conn.execute("BEGIN")
            conn.executemany(sql.INSERT, rows)
            seqs = [(seq, rid, seq) for rid, seq in marks.items() if kept.get(rid) != seq]
            if seqs:
                conn.executemany("UPDATE rooms SET seq = ? WHERE id = ? AND seq < ?", seqs)
            if reads:
                conn.executemany(sql.READ, [(key, rid, seq) for (key, rid), seq in reads.items()])
            if private:
                conn.executemany(sql.INSERT_PRIVATE, private)
            if topics:
                conn.executemany(
                    "UPDATE rooms SET topic = ? WHERE id = ?",
                    [(topic, room_id) for room_id, topic in topics.items()],
                )
            if cursor is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('backplane_cursor', ?)",
                    (" ".join(cursor),),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._fail(f"cannot write to {self.path}: {exc}")
            return
        self.write_latency.add(time.perf_counter() - started)
        self.messages += len(rows)
        if self._grown is not None:
            self._grown.update(kept)

    def _fail(self, message: str) -> None:
        self._pending.clear()
        self._private.clear()
        self._marks.clear()
        self._kept.clear()
        self._topics.clear()
        self._reads.clear()
        self._room_ids.clear()
        self.store.fail(message)

    # read marks

    def read(self, key: str, room: str, seq: int) -> None:
        """The claimed name ``key`` has been shown ``room`` up to ``seq`` (kept at commit)."""
        room_id = self._room_ids.get(room)
        if room_id is not None:
            here = (key, room_id)
            self._reads[here] = max(seq, self._reads.get(here, 0))

    def read_mark(self, key: str, room: str) -> int | None:
        """How far ``key`` has read in ``room`` (None: never marked)."""
        room_id = self._room_ids.get(room)
        if room_id is None:
            return None
        pending = self._reads.get((key, room_id))
        try:
            row = self._conn.execute(
                "SELECT seq FROM marks WHERE key = ? AND room_id = ?", (key, room_id)
            ).fetchone()
        except sqlite3.Error:
            row = None
        stored: int | None = row[0] if row else None
        if pending is not None:
            return max(pending, stored or 0)
        return stored

    def count_after(self, room: str, seq: int) -> int:
        """Messages of ``room`` after ``seq``, this iteration's included."""
        room_id = self._room_ids.get(room)
        if room_id is None:
            return 0
        try:
            count: int = self._conn.execute(
                "SELECT count(*) FROM messages WHERE room_id = ? AND seq > ?", (room_id, seq)
            ).fetchone()[0]
        except sqlite3.Error:
            count = 0
        return count + sum(1 for row in self._pending if row[0] == room_id and row[1] > seq)

    # queries

    def recent(self, room: str, limit: int) -> list[Message]:
        """The last ``limit`` messages of ``room``, oldest first, this iteration's included."""
        room_id = self._room_ids.get(room)
        if room_id is None or limit <= 0:
            return []
        try:
            rows = self._conn.execute(sql.RECENT, (room_id, limit)).fetchall()
        except sqlite3.Error:
            rows = []  # a failing file: the newcomer gets no past, the room goes on
        rows.reverse()
        rows.extend(row[1:] for row in self._pending if row[0] == room_id)
        return [_message(room, row) for row in rows[-limit:]]

    def page(
        self, room: str, limit: int, before: int | None = None, since: float | None = None
    ) -> tuple[list[Message], bool]:
        """The newest ``limit`` messages of ``room`` before ``seq`` ``before`` and at or
        after time ``since``, oldest first; and whether older ones match too."""
        room_id = self._room_ids.get(room)
        if room_id is None:
            return [], False
        below, after = before or 2**62, since or 0.0
        try:
            rows = self._conn.execute(sql.PAGE, (room_id, below, after, limit + 1)).fetchall()
        except sqlite3.Error:
            rows = []
        rows.extend(
            row[1:]
            for row in self._pending
            if row[0] == room_id and row[1] < below and row[2] >= after
        )
        rows.sort()
        more = len(rows) > limit
        return [_message(room, row) for row in rows[-limit:]], more

    def privates(
        self, keys: tuple[str, str], limit: int, since: float | None = None
    ) -> tuple[list[Private], bool]:
        """The newest ``limit`` private messages between ``keys`` at or after ``since``,
        oldest first; and whether older ones match too."""
        low, high = sorted(keys)
        after = since or 0.0
        try:
            rows = self._conn.execute(sql.PRIVATE_PAGE, (low, high, after, limit + 1)).fetchall()
        except sqlite3.Error:
            rows = []
        rows.reverse()
        rows.extend(row[2:] for row in self._private if row[:2] == (low, high) and row[2] >= after)
        more = len(rows) > limit
        return [_private(row) for row in rows[-limit:]], more

    def unread(self, key: str) -> dict[str, int]:
        """New messages since ``key``'s read marks, by room (rooms with none new left out)."""
        try:
            counts = self._conn.execute(sql.UNREAD, (key,)).fetchall()
        except sqlite3.Error:
            return {}
        return {room: count for room, count in counts if count}

    def stats(self) -> HistoryStats:
        oldest = self._conn.execute("SELECT time FROM messages ORDER BY id LIMIT 1").fetchone()
        size = self.store.size()
        where = str(self.path.absolute())  # what `chatctl history` shows, from anywhere
        return HistoryStats(where, self.messages, size, oldest[0] if oldest else None)

    # retention

    def prune(self, before: float | None, keep: int | None, batch: int = 1000) -> int:
        """Delete at most ``batch`` messages older than ``before`` or beyond the newest
        ``keep`` of their room (and ``batch`` private ones older than ``before``); how
        many. Small batches hold the write lock briefly."""
        if self.error is not None:
            return 0
        try:
            conn = self._conn
            private = retention.delete_private(conn, before, batch) if before is not None else 0
            deleted = retention.delete_old(conn, before, batch) if before is not None else 0
            if keep is not None and deleted < batch:
                if self._grown is None:
                    self._grown = {room_id for (room_id,) in conn.execute("SELECT id FROM rooms")}
                rooms = list(self._grown)  # only these can be over: not a walk of every room
                more, done = retention.delete_beyond(conn, keep, batch - deleted, rooms)
                deleted += more
                self._grown.difference_update(done)
        except sqlite3.Error as exc:
            self._fail(f"cannot delete old messages from {self.path}: {exc}")
            return 0
        self.messages -= deleted
        return max(deleted, private)

    # rooms and meta

    def _room_id(self, room: str) -> int:
        conn = self._conn
        conn.execute("INSERT OR IGNORE INTO rooms (name) VALUES (?)", (room,))
        room_id: int = conn.execute("SELECT id FROM rooms WHERE name = ?", (room,)).fetchone()[0]
        self._room_ids[room] = room_id
        return room_id


def _private(row: tuple[float, str, str, str, str | None, int]) -> Private:
    time, name, to, text, msgid, action = row
    return Private(time, name, to, text, msgid, bool(action), history=True)


def _message(
    room: str, row: tuple[int, float, str, str, str | None, int, str | None, str | None]
) -> Message:
    seq, time, name, text, msgid, action, event, target = row
    return Message(seq, time, name, text, room, msgid, bool(action), True, event, target)
