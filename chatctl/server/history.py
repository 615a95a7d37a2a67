"""History: every room message in one SQLite file, written before anyone sees it.

The hub adds each message as the room stamps it (``add``) and commits the
iteration's batch in one transaction at the start of its flush, before a single
byte of it is written to a socket: whatever a client saw is in the file, and a
``kill -9`` loses nothing committed (WAL, ``synchronous=NORMAL``; docs/design.md).
The rooms' ``seq`` high-water marks are saved in the same transaction, so joins
and parts, which take a ``seq`` but are not kept, never make one reused.

One process owns a file (a ``flock`` on ``PATH.lock``); every error opening it is
a ``HistoryError`` with one line for the person starting the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chatctl.protocol import Message

#: ``PRAGMA application_id``: tells a chatctl history file from any other SQLite file.
APPLICATION_ID = 0x63686174  # "chat"
#: ``PRAGMA user_version`` of the schema this code writes; older files are migrated.
SCHEMA_VERSION = 1

_SCHEMA = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE rooms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        seq INTEGER NOT NULL DEFAULT 0
    )""",
    # Ids grow with time, so "older than" is a prefix of the table (retention).
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        name TEXT NOT NULL,
        text TEXT NOT NULL,
        msgid TEXT,
        action INTEGER NOT NULL DEFAULT 0,
        UNIQUE (room_id, seq)
    )""",
]
#: Each later schema version: the statements that migrate from the one before.
_MIGRATIONS: dict[int, list[str]] = {}

_INSERT = (
    "INSERT INTO messages (room_id, seq, time, name, text, msgid, action) VALUES (?,?,?,?,?,?,?)"
)
_RECENT = (
    "SELECT seq, time, name, text, msgid, action FROM messages"
    " WHERE room_id = ? ORDER BY seq DESC LIMIT ?"
)

Row = tuple[int, int, float, str, str, str | None, int]


class HistoryError(Exception):
    """The history file cannot be used; the message is one line for a person."""


@dataclass(frozen=True)
class HistoryStats:
    path: str
    messages: int
    bytes: int
    oldest: float | None


class History:
    """The history file of one server: pending rows of this iteration, and queries."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: IO[str], on_error: Callable[[str], None]
    ) -> None:
        self.path = path
        self._on_error = on_error
        self._conn = conn
        self._lock = lock
        self._room_ids: dict[str, int] = {}
        self._pending: list[Row] = []
        self._marks: dict[int, int] = {}
        #: Set when a write failed: from then on nothing is kept (the hub says so).
        self.error: str | None = None
        self.messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        self.server_id: str = self._meta("server_id", secrets.token_hex(16))

    @classmethod
    def open(cls, path: Path, on_error: Callable[[str], None] = lambda message: None) -> History:
        """Open (or create) ``path``, owned by this process until ``close``.

        A failure later on is told to ``on_error`` once; from then on nothing is kept.
        """
        lock = _lock(path)
        try:
            conn = _connect(path)
        except BaseException:
            lock.close()
            raise
        try:
            _prepare(conn, path)
            return cls(path, conn, lock, on_error)
        except sqlite3.Error as exc:
            conn.close()
            lock.close()
            raise HistoryError(f"cannot use {path}: {exc}") from None
        except BaseException:
            conn.close()
            lock.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.commit()
        self._conn.close()
        self._lock.close()

    # the hot path

    def room_seq(self, room: str) -> int:
        """The last ``seq`` ``room`` gave out, 0 for a new room (whose row this creates)."""
        if self.error is not None:
            return 0
        try:
            room_id = self._room_ids.get(room)
            if room_id is None:
                room_id = self._room_id(room)
            seq: int = (
                self._marks.get(room_id)
                or self._conn.execute("SELECT seq FROM rooms WHERE id = ?", (room_id,)).fetchone()[
                    0
                ]
            )
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.path}: {exc}")
            return 0
        return seq

    def add(self, message: Message) -> None:
        """Keep ``message`` (committed at the next ``commit``)."""
        room_id = self._room_ids.get(message.room or "")
        if room_id is None:  # a room made after a failure
            return
        self._pending.append(
            (
                room_id,
                message.seq,
                message.time,
                message.name,
                message.text,
                message.id,
                int(message.action),
            )
        )

    def mark(self, room: str, seq: int) -> None:
        """``room`` has given out ``seq`` (saved at the next ``commit``)."""
        room_id = self._room_ids.get(room)
        if room_id is not None:
            self._marks[room_id] = seq

    def commit(self) -> None:
        """Write this iteration's messages and marks in one transaction.

        On failure the batch is dropped (its messages are delivered anyway) and
        nothing more is kept (``on_error`` is told).
        """
        if (not self._pending and not self._marks) or self.error is not None:
            return
        rows, marks = self._pending, self._marks
        self._pending, self._marks = [], {}
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows)
            conn.executemany(
                "UPDATE rooms SET seq = ? WHERE id = ? AND seq < ?",
                [(seq, room_id, seq) for room_id, seq in marks.items()],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._fail(f"cannot write to {self.path}: {exc}")
            return
        self.messages += len(rows)

    def _fail(self, message: str) -> None:
        self.error = message
        self._pending.clear()
        self._marks.clear()
        self._room_ids.clear()
        self._on_error(message)

    # queries

    def recent(self, room: str, limit: int) -> list[Message]:
        """The last ``limit`` messages of ``room``, oldest first, this iteration's included."""
        room_id = self._room_ids.get(room)
        if room_id is None or limit <= 0:
            return []
        try:
            rows = self._conn.execute(_RECENT, (room_id, limit)).fetchall()
        except sqlite3.Error:
            rows = []  # a failing file: the newcomer gets no past, the room goes on
        rows.reverse()
        rows.extend(row[1:] for row in self._pending if row[0] == room_id)
        return [_message(room, row) for row in rows[-limit:]]

    def stats(self) -> HistoryStats:
        oldest = self._conn.execute("SELECT time FROM messages ORDER BY id LIMIT 1").fetchone()
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        return HistoryStats(str(self.path), self.messages, size, oldest[0] if oldest else None)

    # retention

    def prune(self, before: float | None, keep: int | None, batch: int = 1000) -> int:
        """Delete at most ``batch`` messages older than ``before`` or beyond the newest
        ``keep`` of their room; how many. Small batches hold the write lock briefly."""
        if self.error is not None:
            return 0
        try:
            deleted = self._prune_old(before, batch) if before is not None else 0
            if keep is not None:
                for (room_id,) in self._conn.execute("SELECT id FROM rooms").fetchall():
                    if deleted >= batch:
                        break
                    deleted += self._prune_room(room_id, keep, batch - deleted)
        except sqlite3.Error as exc:
            self._fail(f"cannot delete old messages from {self.path}: {exc}")
            return 0
        self.messages -= deleted
        return deleted

    def _prune_old(self, before: float, batch: int) -> int:
        last = self._conn.execute(
            "SELECT max(id) FROM (SELECT id FROM messages WHERE time < ? ORDER BY id LIMIT ?)",
            (before, batch),
        ).fetchone()[0]
        if last is None:
            return 0
        count: int = self._conn.execute("DELETE FROM messages WHERE id <= ?", (last,)).rowcount
        return count

    def _prune_room(self, room_id: int, keep: int, batch: int) -> int:
        cut = self._conn.execute(
            "SELECT seq FROM messages WHERE room_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (room_id, keep),
        ).fetchone()
        if cut is None:
            return 0
        count: int = self._conn.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages"
            " WHERE room_id = ? AND seq <= ? ORDER BY seq LIMIT ?)",
            (room_id, cut[0], batch),
        ).rowcount
        return count

    # rooms and meta

    def _room_id(self, room: str) -> int:
        conn = self._conn
        conn.execute("INSERT OR IGNORE INTO rooms (name) VALUES (?)", (room,))
        room_id: int = conn.execute("SELECT id FROM rooms WHERE name = ?", (room,)).fetchone()[0]
        self._room_ids[room] = room_id
        return room_id

    def _meta(self, key: str, default: str) -> str:
        conn = self._conn
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
        value: str = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
        return value


def _message(room: str, row: tuple[int, float, str, str, str | None, int]) -> Message:
    seq, time, name, text, msgid, action = row
    return Message(seq, time, name, text, room, msgid, bool(action), history=True)


def _lock(path: Path) -> IO[str]:
    """Take ``PATH.lock`` for this process, or say who holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(f"{path}.lock", "a+", encoding="utf-8")  # noqa: SIM115  held until close
    except OSError as exc:
        raise HistoryError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise HistoryError(
            f"{path} is in use by another chatctl server (pid {holder}): "
            "give this one its own --history PATH, or --no-history"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # Autocommit: transactions are the explicit BEGIN/COMMIT of ``commit``.
        return sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open {path}: {exc}") from None


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check it is ours and current, create or migrate it, and set the pragmas."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.DatabaseError:
        raise HistoryError(
            f"{path} is not a chatctl history file (or it is damaged): "
            "move it away, or choose another with --history PATH"
        ) from None
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != APPLICATION_ID and (app_id or tables):
        raise HistoryError(
            f"{path} is not a chatctl history file: choose another with --history PATH"
        )
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} was written by a newer chatctl (history schema {version}; this one "
            f"knows up to {SCHEMA_VERSION}): upgrade chatctl, or use another --history PATH"
        )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    if version == 0:
        for statement in _SCHEMA:
            conn.execute(statement)
    else:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    conn.execute("COMMIT")
    os.chmod(path, 0o600)


def default_path(data_dir: Path, port: int) -> Path:
    """One file per port, so two servers started with their defaults do not collide."""
    return data_dir / f"history-{port}.sqlite3"


def data_dir() -> Path:
    """``$CHATCTL_DATA_DIR``, else ``$XDG_DATA_HOME/chatctl``, else ``~/.local/share/chatctl``."""
    explicit = os.environ.get("CHATCTL_DATA_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "chatctl"
