"""Retention: which old messages go (``serve --keep``, ``--keep-messages``), a batch at a time.

Plain statements on the history file's connection, called off the hot path by the
sweeper through ``History.prune``, which owns the transaction and the counts. Small
batches hold the write lock briefly, so a year of history never stalls the chat.
"""

from __future__ import annotations

import sqlite3


def delete_private(conn: sqlite3.Connection, before: float, batch: int) -> int:
    """At most ``batch`` private messages older than ``before``; how many."""
    count: int = conn.execute(
        "DELETE FROM privates WHERE id IN"
        " (SELECT id FROM privates WHERE time < ? ORDER BY id LIMIT ?)",
        (before, batch),
    ).rowcount
    return count


def delete_old(conn: sqlite3.Connection, before: float, batch: int) -> int:
    """At most ``batch`` room messages older than ``before`` (the oldest first)."""
    last = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM messages WHERE time < ? ORDER BY id LIMIT ?)",
        (before, batch),
    ).fetchone()[0]
    if last is None:
        return 0
    count: int = conn.execute("DELETE FROM messages WHERE id <= ?", (last,)).rowcount
    return count


def delete_beyond(conn: sqlite3.Connection, keep: int, batch: int) -> int:
    """At most ``batch`` room messages past the newest ``keep`` of their room."""
    deleted = 0
    for (room_id,) in conn.execute("SELECT id FROM rooms").fetchall():
        if deleted >= batch:
            break
        deleted += _delete_room(conn, room_id, keep, batch - deleted)
    return deleted


def _delete_room(conn: sqlite3.Connection, room_id: int, keep: int, batch: int) -> int:
    cut = conn.execute(
        "SELECT seq FROM messages WHERE room_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
        (room_id, keep),
    ).fetchone()
    if cut is None:
        return 0
    count: int = conn.execute(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages"
        " WHERE room_id = ? AND seq <= ? ORDER BY seq LIMIT ?)",
        (room_id, cut[0], batch),
    ).rowcount
    return count
