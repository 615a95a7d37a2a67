"""The SQL the history's connection runs for messages, read marks and private messages.

Text only, no behaviour: ``history`` runs it (retention's statements are ``retention``'s,
the schema ``store``'s).
"""

# OR IGNORE: a cluster's server may read an entry again after a crash between commits.
INSERT = (
    "INSERT OR IGNORE INTO messages (room_id, seq, time, name, text, msgid, action, event, target)"
    " VALUES (?,?,?,?,?,?,?,?,?)"
)
# Marks only move forward.
READ = (
    "INSERT INTO marks (key, room_id, seq) VALUES (?, ?, ?)"
    " ON CONFLICT (key, room_id) DO UPDATE SET seq = max(seq, excluded.seq)"
)
PAGE = (
    "SELECT seq, time, name, text, msgid, action, event, target FROM messages"
    " WHERE room_id = ? AND seq < ? AND time >= ? ORDER BY seq DESC LIMIT ?"
)
UNREAD = (
    "SELECT r.name, (SELECT count(*) FROM messages m WHERE m.room_id = k.room_id"
    " AND m.seq > k.seq) FROM marks k JOIN rooms r ON r.id = k.room_id WHERE k.key = ?"
)
INSERT_PRIVATE = (
    "INSERT INTO privates (low, high, time, name, recipient, text, msgid, action)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
PRIVATE_PAGE = (
    "SELECT time, name, recipient, text, msgid, action FROM privates"
    " WHERE low = ? AND high = ? AND time >= ? ORDER BY id DESC LIMIT ?"
)
RECENT = (
    "SELECT seq, time, name, text, msgid, action, event, target FROM messages"
    " WHERE room_id = ? ORDER BY seq DESC LIMIT ?"
)

# A room's last seq: its row holds it as of the last event not kept (a join, a part), a kept
# message holds its own, so the row is not written with every message (docs/design.md).
ROOM_SEQ = (
    "SELECT max(seq, coalesce((SELECT max(m.seq) FROM messages m WHERE m.room_id = ?), 0))"
    " FROM rooms WHERE id = ?"
)
ROOM_SEQS = (
    "SELECT name, max(seq, coalesce((SELECT max(m.seq) FROM messages m"
    " WHERE m.room_id = rooms.id), 0)) FROM rooms"
)
