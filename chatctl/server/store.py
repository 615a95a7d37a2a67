"""The server's SQLite file: opened once, owned by one process, schema checked and migrated.

History (``history``) and claimed names (``claims``) keep their tables in it. One
process owns a file (a ``flock`` on ``PATH.lock``); every error opening it is a
``HistoryError`` with one line for the person starting the server. A failure while
running is told once (``fail``): from then on nothing more is kept, and the room goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: ``PRAGMA application_id``: tells a chatctl history file from any other SQLite file.
APPLICATION_ID = 0x63686174  # "chat"
#: ``PRAGMA user_version`` of the schema this code writes; older files are migrated
#: (``_SCHEMA`` is version 1, each of ``_MIGRATIONS`` one step up from it).
SCHEMA_VERSION = 5

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
_MIGRATIONS: dict[int, list[str]] = {
    2: [
        # A claimed name: the secret's SHA-256 only (the secret itself is never kept).
        """CREATE TABLE claims (
            key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash BLOB NOT NULL,
            created REAL NOT NULL,
            used REAL NOT NULL
        )""",
        # How far a claimed name has read in each room; it only moves forward.
        """CREATE TABLE marks (
            key TEXT NOT NULL,
            room_id INTEGER NOT NULL REFERENCES rooms(id),
            seq INTEGER NOT NULL,
            PRIMARY KEY (key, room_id)
        ) WITHOUT ROWID""",
    ],
    3: [
        # Private messages between two claimed names, readable by those two only:
        # ``low`` and ``high`` are their name keys, in order, whoever sent it.
        """CREATE TABLE privates (
            id INTEGER PRIMARY KEY,
            low TEXT NOT NULL,
            high TEXT NOT NULL,
            time REAL NOT NULL,
            name TEXT NOT NULL,
            recipient TEXT NOT NULL,
            text TEXT NOT NULL,
            msgid TEXT,
            action INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE INDEX privates_pair ON privates (low, high, id)""",
    ],
    4: [
        # An operator's action ("kick", "topic", ...) and whom it was about; NULL for
        # a message. A room's topic outlives the message that set it (retention).
        """ALTER TABLE messages ADD COLUMN event TEXT""",
        """ALTER TABLE messages ADD COLUMN target TEXT""",
        """ALTER TABLE rooms ADD COLUMN topic TEXT""",
        # Who may not come into a room ('' : the server), until when (NULL: until lifted).
        """CREATE TABLE bans (
            room TEXT NOT NULL,
            key TEXT,
            network TEXT,
            until REAL,
            by TEXT NOT NULL,
            reason TEXT,
            shown TEXT NOT NULL
        )""",
    ],
    # No statement: a room's row no longer holds its last seq when a kept message does
    # (docs/design.md). An older chatctl would read the row alone and give seqs twice
    # after a crash, so it must refuse the file, as it refuses any newer one.
    5: [],
}


class HistoryError(Exception):
    """The history file cannot be used; the message is one line for a person."""


#: Seconds between the checkpoint thread's passes over the write-ahead log.
CHECKPOINT_INTERVAL = 0.2


class _Checkpointer(threading.Thread):
    """Moves the write-ahead log into the database, off the event loop.

    SQLite's automatic checkpoint runs inside a commit, on the loop, with two
    ``fdatasync`` of up to tens of milliseconds (``rate``'s p99, docs/design.md). This
    thread, with a connection of its own, runs a PASSIVE checkpoint every
    ``CHECKPOINT_INTERVAL``: it never blocks the writer, and sqlite3 drops the GIL
    meanwhile. Durability is unchanged: a commit is in the log either way.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(name="chatctl-checkpoint", daemon=True)
        self._path = path
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=0.05)
        except sqlite3.Error:
            return  # the loop's own connection says what is wrong
        with contextlib.closing(conn):
            while not self._stopping.wait(CHECKPOINT_INTERVAL):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def stop(self) -> None:
        self._stopping.set()
        self.join()


class Store:
    """The open file: its connection (this thread only), its lock, its identity."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: IO[str], on_error: Callable[[str], None]
    ) -> None:
        self.path = path
        self.conn = conn
        self._lock = lock
        self._on_error = on_error
        #: Set when a write failed: from then on nothing is kept (the hub says so).
        self.error: str | None = None
        #: This server's identity, kept in the file: clients key their claims by it, so a
        #: server that moves to another address or port is still recognised.
        self.server_id: str = self._meta("server_id", secrets.token_hex(16))
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the thread's job, not a commit's
        self._checkpointer = _Checkpointer(path)
        self._checkpointer.start()

    @classmethod
    def open(cls, path: Path, on_error: Callable[[str], None] = lambda message: None) -> Store:
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
        self._checkpointer.stop()
        self.conn.close()  # the last connection: it checkpoints what is left
        self._lock.close()

    def fail(self, message: str) -> None:
        """Say once why the file cannot be used any more."""
        if self.error is None:
            self.error = message
            self._on_error(message)

    def size(self) -> int:
        """Bytes on disk, the write-ahead log included."""
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        return size

    def _meta(self, key: str, default: str) -> str:
        conn = self.conn
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
        value: str = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
        return value


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
        version = 1
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
