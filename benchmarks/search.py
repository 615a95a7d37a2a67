"""``/search`` on a big history: how long a search takes, and what indexing costs.

    .venv/bin/python benchmarks/search.py                       # 1 M messages, ~2 minutes
    .venv/bin/python benchmarks/search.py --messages 100000 --searches 50   # a look
    .venv/bin/python benchmarks/search.py --db big.sqlite3      # the file of history.py, reused

1. **The file**, as ``benchmarks/history.py`` makes it (``--messages`` in ``--rooms``), and
   then ``--needles`` (20) messages spread over the 30 days get a word of their own
   (``needle00`` ...), one of them exactly 7 days old: the message a person looks for.
   The search index (``FILE.search``) is deleted, so the server builds it from nothing.
2. **Indexing.** ``chatctl serve --history FILE --rate 0``; a client in every room asks
   for a needle at once: the answer waits until the index has every message (a search
   first indexes whatever is missing), so the time is what a first search after an upgrade
   costs; the server's CPU for it and its RSS after it are read from /proc.
3. **Searches**, one at a time, from the time of the ``search`` write to its
   ``search_reply``, ``--searches`` (200) of each kind: a needle (one match, its room and
   ``seq`` checked), a common word (in ~1 message of 7: the newest 20), two common words,
   a prefix (``rev*``), and a common word by a client in one room only (the index holds all
   20 rooms: 19 of 20 matches are skipped). Target: p99 ≤ 50 ms for a word.

Markdown on stdout, progress on stderr. Nothing here is part of the test suite
(tests/test_search.py tests what a search finds).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from history import (
    Server,
    build,
    file_facts,
    machine_lines,
    mb,
    percentile,
    progress,
    room_names,
    verdict,
)

from chatctl.protocol import Bye, Hello, SearchRequest, encode

TARGET_MS = 50.0
RSS_TARGET = 80_000_000


class Found(msgspec.Struct):
    seq: int
    room: str | None = None


class Reply(msgspec.Struct):
    type: str
    id: str | None = None
    messages: list[Found] = []
    code: str | None = None
    message: str | None = None


DECODE = msgspec.json.Decoder(Reply).decode
#: (word, room, seq) of each message given a word of its own.
Planted = list[tuple[str, str, int]]


def plant(path: Path, needles: int, seed: int) -> Planted:
    """Give ``needles`` messages a word of their own: (word, room, seq) of each."""
    rng = random.Random(seed)  # noqa: S311  which messages, not secrets
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        low, high = conn.execute("SELECT min(id), max(id) FROM messages").fetchone()
        week = time.time() - 7 * 86400
        ids = [rng.randint(low, high) for _ in range(needles - 1)]
        ids.append(conn.execute(
            "SELECT id FROM messages WHERE time >= ? ORDER BY time LIMIT 1", (week,)
        ).fetchone()[0])  # fmt: skip
        planted = []
        conn.execute("BEGIN")
        for n, row in enumerate(sorted(set(ids))):
            word = f"needle{n:02d}"
            conn.execute("UPDATE messages SET text = text || ' ' || ? WHERE id = ?", (word, row))
            room, seq = conn.execute(
                "SELECT r.name, m.seq FROM messages m JOIN rooms r ON r.id = m.room_id"
                " WHERE m.id = ?",
                (row,),
            ).fetchone()
            planted.append((word, room, seq))
        conn.execute("COMMIT")
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}.search{suffix}").unlink(missing_ok=True)
    return planted


class Searcher:
    """One connection in ``rooms``, asking one search at a time."""

    def __init__(self, port: int, name: str, rooms: list[str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.asked = 0
        self.sock.sendall(encode(Hello(version=2, name=name, rooms=rooms)))

    def search(self, words: str) -> tuple[float, Reply]:
        """Milliseconds to the answer, and the answer."""
        self.asked += 1
        ask = f"s{self.asked}"
        started = time.perf_counter()
        self.sock.sendall(encode(SearchRequest(words=words, id=ask)))
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    sys.exit(f"the server closed the connection searching {words!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            if not line.startswith((b'{"type":"search_reply"', b'{"type":"error"')):
                continue
            reply = DECODE(line)
            if reply.id == ask:
                if reply.type == "error":
                    sys.exit(f"search {words!r}: {reply.code}: {reply.message}")
                return (time.perf_counter() - started) * 1000, reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(encode(Bye()))
        self.sock.close()


@dataclass
class Kind:
    label: str
    ms: list[float]
    found: int  # messages in the last answer


def run(server: Server, rooms: list[str], planted: Planted, n: int) -> list[Kind]:
    everywhere = Searcher(server.port, "seeker", rooms)
    one_room = Searcher(server.port, "loner", rooms[:1])
    kinds = []
    try:
        asks = [
            ("a needle (one match), in every room", everywhere, None),
            ("a common word, in every room", everywhere, "deploy"),
            ("two common words, in every room", everywhere, "deploy build"),
            ("a prefix (rev*), in every room", everywhere, "rev*"),
            ("a common word, in one room of 20", one_room, "merge"),
        ]
        for label, who, words in asks:
            ms: list[float] = []
            reply = None
            for i in range(n):
                word, room, seq = planted[i % len(planted)]
                took, reply = who.search(words or word)
                if words is None and [(m.room, m.seq) for m in reply.messages] != [(room, seq)]:
                    sys.exit(f"{word}: expected {room} {seq}, got {reply.messages}")
                ms.append(took)
            kinds.append(Kind(label, ms, len(reply.messages) if reply else 0))
            progress(f"  {label}: p99 {percentile(ms, 0.99):.2f} ms")
    finally:
        everywhere.close()
        one_room.close()
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--needles", type=int, default=20)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--db", type=Path, help="the file: built there if missing, reused")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="chatctl-search-bench-"))
    server: Server | None = None
    try:
        db = args.db or folder / "history.sqlite3"
        if not db.exists():
            progress(f"building {args.messages:,} messages in {args.rooms} rooms: {db}")
            progress(f"  built in {build(db, args.messages, args.rooms, args.seed):.1f} s")
        planted = plant(db, args.needles, args.seed)
        facts = file_facts(db, args.rooms)
        rooms = room_names(args.rooms)
        server = Server(db, folder)
        cpu0 = server.cpu_seconds()
        progress(f"server on port {server.port}; the first search indexes everything")
        first = Searcher(server.port, "first", rooms)
        index_ms, _ = first.search(planted[0][0])
        first.close()
        index_cpu = server.cpu_seconds() - cpu0
        rss, hwm = server.memory()
        index_bytes = Path(f"{db}.search").stat().st_size
        progress(f"  {index_ms / 1000:.1f} s; {args.searches} searches of each kind")
        kinds = run(server, rooms, planted, args.searches)
        rss_end, hwm_end = server.memory()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    lines = ["### Machine", "", *machine_lines(db), "", "### Results", ""]
    lines += [
        f"{facts.messages:,} messages in {len(facts.rooms)} rooms, {mb(facts.bytes)}; the "
        f"index {mb(index_bytes)}, built by the first search after start in "
        f"{index_ms / 1000:.1f} s ({index_cpu:.1f} s of server CPU); server RSS after it "
        f"{mb(rss)} (peak {mb(hwm)}), after the searches {mb(rss_end)} (peak {mb(hwm_end)}).",
        "",
        "| search (limit 20, one at a time) | found | p50 / p99 / max | target | met |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for k in kinds:
        p50, p99 = percentile(k.ms, 0.5), percentile(k.ms, 0.99)
        lines.append(
            f"| {k.label} x{len(k.ms)} | {k.found} | {p50:.2f} / {p99:.2f} / {max(k.ms):.2f} ms "
            f"| p99 ≤ {TARGET_MS:g} ms | {verdict(p99 <= TARGET_MS)} |"
        )
    lines.append(
        f"| server RSS after the searches | | {mb(rss_end)} | ≤ {mb(RSS_TARGET)} "
        f"| {verdict(rss_end <= RSS_TARGET)} |"
    )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
