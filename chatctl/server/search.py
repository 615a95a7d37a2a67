"""``/search``: an FTS5 index of the history file, kept by a thread in a file of its own.

Indexing a message costs FTS5 about 8 µs of CPU, more than keeping it (docs/design.md);
in the loop's commit it would be paid before every echo. So a thread with its own
connection indexes in batches, and into a second file (``PATH.search``), so that
its writes never take the history file's write lock and the loop's commits never wait
for it. It reads the history's new rows by id (WAL: a reader never blocks the writer),
and searches there too, so a search never runs on the loop. The index is derived: a
damaged or foreign one is rebuilt from the history.

Under a flood (more than ``BUSY`` new messages a pass) indexing waits until the server
is quiet or ``MAX_LAG`` behind, so it takes no CPU from the fan-out; a search first
indexes whatever is missing, so it finds everything committed before it was asked.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from chatctl.protocol import Message, Private

#: Seconds between the thread's passes.
INTERVAL = 1.0
#: New messages in one pass above which the server counts as busy (indexing waits).
BUSY = 5000
#: How far behind the index may fall while the server is busy.
MAX_LAG = 100_000
#: Rows indexed per transaction.
BATCH = 2000

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS main.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS main.room_text USING fts5(text)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS main.private_text USING fts5(text)",
]
_ROOMS = (
    "SELECT m.seq, m.time, m.name, m.text, m.msgid, m.action, r.name"
    " FROM main.room_text JOIN h.messages m ON m.id = room_text.rowid"
    " JOIN h.rooms r ON r.id = m.room_id"
    " WHERE room_text MATCH ? AND r.name IN ({rooms})"
    " ORDER BY room_text.rowid DESC LIMIT ?"
)
_PRIVATES = (
    "SELECT p.time, p.name, p.recipient, p.text, p.msgid, p.action"
    " FROM main.private_text JOIN h.privates p ON p.id = private_text.rowid"
    " WHERE private_text MATCH ? AND (p.low = ? OR p.high = ?)"
    " ORDER BY private_text.rowid DESC LIMIT ?"
)


@dataclass(frozen=True)
class _Follow:
    """What the index does for one history table and its FTS table (names of ours only)."""

    fts: str
    span: str
    last: str
    add: str
    trim: str

    @classmethod
    def of(cls, fts: str, table: str) -> _Follow:
        return cls(
            fts,
            # Two subqueries: SQLite answers a lone min() or max() from the key, but
            # min(id), max(id) together scan the table (18 ms a pass on 100 000 rows).
            span=f"SELECT (SELECT min(id) FROM h.{table}), (SELECT max(id) FROM h.{table})",  # noqa: S608
            last=f"SELECT max(id) FROM (SELECT id FROM h.{table} WHERE id > ? ORDER BY id LIMIT ?)",  # noqa: S608
            add=f"INSERT INTO main.{fts} (rowid, text) SELECT id, text FROM h.{table} WHERE id > ? AND id <= ?",  # noqa: S608, E501
            trim=f"DELETE FROM main.{fts} WHERE rowid < ?",  # noqa: S608  our names
        )


#: The history tables the index follows.
_FOLLOWED = (_Follow.of("room_text", "messages"), _Follow.of("private_text", "privates"))


@dataclass(frozen=True)
class Query:
    """One ``search``: ``words`` in ``rooms``, and ``key``'s private messages if not None."""

    words: str
    rooms: Sequence[str]
    key: str | None
    limit: int


@dataclass(frozen=True)
class Found:
    """The newest matches, oldest first; ``more``: older ones match too."""

    messages: list[Message]
    private: list[Private]
    more: bool


#: A pass with no search waiting.
_PASS: tuple[Query, Future[Found]] = (Query("", (), None, 0), Future())


def index_path(history: Path) -> Path:
    """``history-5000.sqlite3`` -> ``history-5000.sqlite3.search``: beside it, like its log."""
    return history.with_name(f"{history.name}.search")


def match_expression(words: str) -> str:
    """Each word a quoted FTS5 string (all of them must match), so nothing the user
    typed is FTS5 syntax; a trailing ``*`` keeps its meaning: a prefix."""
    terms = []
    for word in words.split():
        prefix = word.endswith("*") and len(word) > 1
        quoted = '"' + word.rstrip("*").replace('"', '""') + '"'
        terms.append(quoted + ("*" if prefix else ""))
    return " ".join(terms)


class SearchIndex(threading.Thread):
    """The index of one history file and the thread that keeps and searches it."""

    def __init__(
        self, history: Path, server_id: str, on_error: Callable[[str], None] = lambda m: None
    ) -> None:
        super().__init__(name="chatctl-search", daemon=True)
        self.history = history
        self.path = index_path(history)
        self._server_id = server_id
        #: Called in this thread, once, when the index cannot be used any more.
        self._on_error = on_error
        self._queries: queue.SimpleQueue[tuple[Query, Future[Found]] | None] = queue.SimpleQueue()
        self._newest = {follow.fts: 0 for follow in _FOLLOWED}
        #: Why searching is impossible (None: it works).
        self.error: str | None = None

    def search(self, query: Query) -> Future[Found]:
        """Answered in this thread, once the index holds every committed message."""
        future: Future[Found] = Future()
        if self.error is not None:
            future.set_exception(sqlite3.OperationalError(self.error))
        else:
            self._queries.put((query, future))
        return future

    def stop(self) -> None:
        self._queries.put(None)
        if self.is_alive():
            self.join()

    def run(self) -> None:
        try:
            conn = self._open()
        except sqlite3.Error as exc:
            return self._fail(f"cannot use {self.path}: {exc}")
        with contextlib.closing(conn):
            self._serve(conn)

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            try:
                asked = self._queries.get(timeout=INTERVAL)
            except queue.Empty:
                asked = _PASS
            if asked is None:
                return
            try:
                self._index(conn, everything=asked is not _PASS)
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                self._fail(f"cannot index {self.path}: {exc}")
            if asked is not _PASS:
                self._answer(conn, *asked)
            if self.error is not None:
                return self._drain()

    def _drain(self) -> None:
        """After a failure: every waiting search gets the error."""
        while (asked := self._queries.get()) is not None:
            asked[1].set_exception(sqlite3.OperationalError(self.error))

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            self._on_error(message)

    def _open(self) -> sqlite3.Connection:
        for attempt in (1, 2):
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
            try:
                self.path.chmod(0o600)  # private messages are in it too
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("ATTACH DATABASE ? AS h", (str(self.history),))
                for statement in _SCHEMA:
                    conn.execute(statement)
                if self._meta(conn, "server_id") not in (None, self._server_id):
                    raise sqlite3.DatabaseError("the index of another history file")
            except sqlite3.DatabaseError:
                conn.close()
                if attempt == 2:
                    raise
                for suffix in ("", "-wal", "-shm"):  # derived: rebuilt from the history
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                continue
            conn.execute(
                "INSERT OR REPLACE INTO main.meta VALUES ('server_id', ?)", (self._server_id,)
            )
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM main.meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _index(self, conn: sqlite3.Connection, everything: bool) -> None:
        """Index what the history has that the index has not, unless the server is busy."""
        for follow in _FOLLOWED:
            done = int(self._meta(conn, follow.fts) or 0)
            oldest, newest = conn.execute(follow.span).fetchone()
            newest = newest or 0
            grew, self._newest[follow.fts] = newest - self._newest[follow.fts], newest
            if not everything and grew > BUSY and newest - done < MAX_LAG:
                continue  # a flood: the fan-out first
            while done < newest:
                done = self._batch(conn, follow, done)
            # Retention deleted the oldest: so does the index (rows of messages deleted
            # from the middle by --keep-messages are left out of results by the join).
            conn.execute(follow.trim, (oldest if oldest is not None else done + 1,))

    def _batch(self, conn: sqlite3.Connection, follow: _Follow, done: int) -> int:
        """Index the next ``BATCH`` rows after id ``done``; the last id indexed."""
        conn.execute("BEGIN")
        last: int | None = conn.execute(follow.last, (done, BATCH)).fetchone()[0]
        if last is not None:
            conn.execute(follow.add, (done, last))
            conn.execute("INSERT OR REPLACE INTO main.meta VALUES (?, ?)", (follow.fts, str(last)))
        conn.execute("COMMIT")
        return 2**62 if last is None else last

    def _answer(self, conn: sqlite3.Connection, query: Query, future: Future[Found]) -> None:
        if self.error is not None:
            future.set_exception(sqlite3.OperationalError(self.error))
            return
        match = match_expression(query.words)
        limit = query.limit + 1
        try:
            rooms = []
            if query.rooms:
                marks = ",".join("?" * len(query.rooms))
                sql = _ROOMS.format(rooms=marks)
                rooms = conn.execute(sql, (match, *query.rooms, limit)).fetchall()
            private = []
            if query.key is not None:
                private = conn.execute(_PRIVATES, (match, query.key, query.key, limit)).fetchall()
        except sqlite3.OperationalError:
            rooms, private = [], []  # words FTS5 finds no token in: nothing matches
        except sqlite3.Error as exc:
            future.set_exception(exc)
            return
        future.set_result(_found(rooms, private, query.limit))


def _found(rooms: list[tuple[object, ...]], private: list[tuple[object, ...]], limit: int) -> Found:
    """The newest ``limit`` of both kinds together, oldest first."""
    both: list[tuple[float, Message | Private]] = []
    for seq, time, name, text, msgid, action, room in reversed(rooms):
        message = Message(seq, time, name, text, room, msgid, bool(action), history=True)  # type: ignore[arg-type]
        both.append((message.time, message))
    for time, name, to, text, msgid, action in reversed(private):
        pm = Private(time, name, to, text, msgid, bool(action), history=True)  # type: ignore[arg-type]
        both.append((pm.time, pm))
    both.sort(key=lambda pair: pair[0])  # stable: ties stay in the order they were kept
    more = len(both) > limit
    kept = [item for _, item in both[-limit:]]
    return Found(
        [m for m in kept if isinstance(m, Message)],
        [p for p in kept if isinstance(p, Private)],
        more,
    )
