"""Retention: which old messages go (``serve --keep``, ``--keep-messages``), a batch at a time.

Plain statements on the history file's connection, called off the hot path by the
sweeper through ``History.prune``, which owns the transaction and the counts. Small
batches hold the write lock briefly, so a year of history never stalls the chat.
"""

from __future__ import annotations

import sqlite3

# A room's last seq may be its newest message's alone (history.py): before the messages
# up to ``id`` go, the rooms they are in take it into their row. NOT INDEXED: a range of
# ids, not a walk of the whole (room_id, seq) index.
_SETTLE = (
    "UPDATE rooms SET seq = (SELECT max(m.seq) FROM messages m WHERE m.room_id = rooms.id)"
    " WHERE id IN (SELECT DISTINCT room_id FROM messages NOT INDEXED WHERE id <= ?)"
    " AND seq < (SELECT coalesce(max(m.seq), 0) FROM messages m WHERE m.room_id = rooms.id)"
)


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
    conn.execute(_SETTLE, (last,))
    count: int = conn.execute("DELETE FROM messages WHERE id <= ?", (last,)).rowcount
    return count


def delete_beyond(
    conn: sqlite3.Connection, keep: int, batch: int, rooms: list[int]
) -> tuple[int, list[int]]:
    """At most ``batch`` messages of ``rooms`` past the newest ``keep`` (at least 1, so a
    room's newest message, which may hold its last seq, stays) of their room: how many,
    and the rooms found with no more than ``keep`` left."""
    deleted, done = 0, []
    for room_id in rooms:
        if deleted >= batch:
            break
        budget = batch - deleted
        count = _delete_room(conn, room_id, keep, budget)
        deleted += count
        if count < budget:
            done.append(room_id)
    return deleted, done


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
