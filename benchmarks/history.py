"""chatctl's history under a big file: a join's replay, the server's memory, and kill -9.

    .venv/bin/python benchmarks/history.py                      # 1 M messages, ~1 minute
    .venv/bin/python benchmarks/history.py --messages 100000 --joins 100 --kills 3   # a look
    .venv/bin/python benchmarks/history.py --db big.sqlite3     # build it once, then reuse

1. **The file.** ``--messages`` (1 000 000) messages in ``--rooms`` (20) rooms ``#room-01``
   ..., written straight into a history file with sqlite3: ``Store.open`` of
   chatctl/server/history.py makes the file (schema, application id, WAL), then one
   transaction inserts the rows with the server's own INSERT, as the server would have
   kept them: each message in a random room taking that room's next ``seq``, times over the
   last 30 days, 50 people, texts of 60-100 bytes (80 on average: slices of a long run of
   words), a message id each; the rooms' ``seq`` marks last (about 8 s for 1 M, 146 MB). In
   a temporary folder removed at the end, or ``--db PATH``: built there if missing and
   kept, used as it is if present (the kill rounds add to its rooms ``#kill-a``, ``#kill-b``).
2. **Joins.** ``chatctl serve --history FILE --rate 0`` (uvloop if installed, as
   ``chatctl[speed]``), then ``--joins`` (240) joins, one at a time, round the rooms: a new
   connection says ``hello`` with ``rooms: [ROOM]`` and ``history: 50``, and the time is from
   just before that write to the last of the 50 replayed ``message`` frames (each join checks
   that 50 came, oldest first, ending at the room's last message). p50 / p99 / max over all
   joins, and the first join of each room (its ``Room`` made and its ``seq`` read) apart.
   Target: p99 ≤ 20 ms.
3. **Memory.** The server's VmRSS from /proc/PID/status after those joins (and after start,
   and its peak, VmHWM). Target: ≤ 80 MB (10^6 bytes).
4. **kill -9.** ``--kills`` (10) rounds on the same server and file: ``--flooders`` (3)
   clients send as fast as a window of 32 unconfirmed messages each allows, alternating
   between two rooms, and ``--readers`` (20) read; after 0.3-1.2 s (random) the server gets
   SIGKILL, mid-stream. It is started again on the same file, and then: every message a
   flooder saw echoed, and every message any client saw, is looked up in the file (sqlite3,
   beside the running server); a new client joins both rooms and says one message in each,
   and every ``seq`` it is given (its join, its messages) must be above every ``seq`` any
   client saw before the kill. Targets: nothing missing, no ``seq`` reused. The restarted
   server is the next round's.

Markdown on stdout (machine, file, results against the targets, every kill round), progress
on stderr. Nothing here is part of the test suite (tests/test_history.py has a small kill -9).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from chatctl import __version__
from chatctl.eventloop import LOOP_ENV, choose
from chatctl.protocol import Bye, Hello, Say, encode
from chatctl.server.statements import INSERT as _INSERT  # the server's own schema and INSERT
from chatctl.server.store import Store

ROOT = Path(__file__).resolve().parent.parent
REPLAY = 50
JOIN_TARGET_MS = 20.0
RSS_TARGET = 80_000_000
WINDOW = 32
KILL_ROOMS = ("#kill-a", "#kill-b")
#: Texts are made of these words (only their sizes matter).
VOCABULARY = (
    "the a to and of in is it you that for on was with he as at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she "
    "do how their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part "
    "deploy build release ticket review merge branch server chat room history replay"
)
WORDS = VOCABULARY.split()


class Frame(msgspec.Struct):
    """The fields of a server frame this script looks at (the others are ignored)."""

    type: str
    seq: int | None = None
    room: str | None = None
    name: str | None = None
    id: str | None = None
    #: ``room``: how many replayed messages follow; ``message``: replayed, not new.
    history: bool | int = 0
    code: str | None = None
    message: str | None = None


DECODE = msgspec.json.Decoder(Frame).decode


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the file


def room_names(rooms: int) -> list[str]:
    return [f"#room-{i:02d}" for i in range(1, rooms + 1)]


def build(path: Path, messages: int, rooms: int, seed: int) -> float:
    """Write ``messages`` into a new history file at ``path``; seconds it took."""
    started = time.perf_counter()
    Store.open(path).close()  # schema, application id, user version, WAL
    rng = random.Random(seed)  # noqa: S311  made-up texts, not secrets
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # one big transaction: no journal, no sync
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        names = room_names(rooms)
        conn.executemany("INSERT INTO rooms (name) VALUES (?)", [(n,) for n in names])
        ids = [
            conn.execute("SELECT id FROM rooms WHERE name = ?", (n,)).fetchone()[0] for n in names
        ]
        people = [f"user{i:02d}" for i in range(50)]
        prefixes = [f"{rng.getrandbits(32):08x}" for _ in people]
        seqs = [0] * rooms
        first = time.time() - 30 * 86400
        step = 30 * 86400 / messages

        # A text is a slice of 60-100 bytes at a random place: a word each would take 20 µs.
        corpus = " ".join(rng.choices(WORDS, k=200_000))

        def rows() -> Iterator[tuple[int, int, float, str, str, str, int, None, None]]:
            randrange, randint = rng.randrange, rng.randint
            end = len(corpus) - 100
            for i in range(messages):
                room = randrange(rooms)
                seqs[room] += 1
                who = randrange(50)
                start = randrange(end)
                text = corpus[start : start + randint(60, 100)]
                yield (ids[room], seqs[room], first + i * step, people[who], text,
                       f"{prefixes[who]}.{i}", 0, None, None)  # fmt: skip

        conn.executemany(_INSERT, rows())
        conn.executemany(
            "UPDATE rooms SET seq = ? WHERE id = ?",
            [(s, i) for s, i in zip(seqs, ids, strict=True)],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # as the server keeps it
    finally:
        conn.close()
    return time.perf_counter() - started


@dataclass
class FileFacts:
    messages: int
    rooms: dict[str, int]  # room -> seq of its last message
    bytes: int


def file_facts(path: Path, rooms: int) -> FileFacts:
    conn = sqlite3.connect(path)
    try:
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        last = {}
        for name in room_names(rooms):
            row = conn.execute(
                "SELECT max(m.seq) FROM messages m JOIN rooms r ON r.id = m.room_id"
                " WHERE r.name = ?",
                (name,),
            ).fetchone()
            if row[0] is None:
                sys.exit(f"{path} has no messages in {name}: not a file this script built")
            last[name] = row[0]
    finally:
        conn.close()
    size = sum(os.stat(f"{path}{s}").st_size for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
    return FileFacts(total, last, size)


# --------------------------------------------------------------------------- the server


def chatctl() -> list[str]:
    beside = Path(sys.executable).parent / "chatctl"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "chatctl"]


class Server:
    """``chatctl serve --history PATH --rate 0`` on a free loopback port, its log in ``folder``."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.log = folder / f"serve-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
        if LOOP_ENV in os.environ:
            env[LOOP_ENV] = os.environ[LOOP_ENV]
        env["CHATCTL_DATA_DIR"] = str(folder / "data")
        command = [*chatctl(), "serve", "--host", "127.0.0.1", "--port", "0"]
        command += ["--history", str(path), "--rate", "0"]
        started = time.perf_counter()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        end = time.monotonic() + 60
        while True:
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.text())
            if found:
                self.port = int(found.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                sys.exit(f"chatctl serve did not start: {self.text().strip()[-400:]}")
            time.sleep(0.01)
        self.start_seconds = time.perf_counter() - started

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def memory(self) -> tuple[int, int]:
        """VmRSS and VmHWM in bytes."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        assert rss
        assert hwm
        return int(rss.group(1)) * 1024, int(hwm.group(1)) * 1024

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- joins


class JoinError(Exception):
    pass


def join_once(port: int, room: str, name: str, last: int) -> float:
    """Milliseconds from sending hello to the last replayed message; checks the replay."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = encode(Hello(version=2, name=name, rooms=[room], history=REPLAY))
        buf, want = b"", None
        seqs: list[int | None] = []
        started = time.perf_counter()
        sock.sendall(hello)
        while want is None or len(seqs) < want:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise JoinError(f"{name}: closed after {len(seqs)} replayed messages")
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                frame = DECODE(line)
                if frame.type == "room":
                    want = int(frame.history)
                elif frame.type == "message" and frame.history is True:
                    seqs.append(frame.seq)
                elif frame.type == "error":
                    raise JoinError(f"{name}: error {frame.code}: {frame.message}")
        elapsed = (time.perf_counter() - started) * 1000
        sock.sendall(encode(Bye()))
    if want != REPLAY or seqs != list(range(last - REPLAY + 1, last + 1)):
        raise JoinError(f"{name} in {room}: replay of {want}, seqs {seqs[:3]}..{seqs[-3:]}")
    return elapsed


def machine_busy() -> float:
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Joins:
    all_ms: list[float]
    first_ms: list[float]
    rss_start: int
    rss_after: int
    hwm_after: int
    server_cpu_ms_per_join: float
    others_percent: float


def run_joins(server: Server, facts: FileFacts, joins: int) -> Joins:
    rss_start, _ = server.memory()
    rooms = list(facts.rooms)
    all_ms, first_ms = [], []
    cpu0, busy0, wall0 = server.cpu_seconds(), machine_busy(), time.monotonic()
    own0 = time.process_time()
    for i in range(joins):
        room = rooms[i % len(rooms)]
        ms = join_once(server.port, room, f"joiner{i}", facts.rooms[room])
        all_ms.append(ms)
        if i < len(rooms):
            first_ms.append(ms)
    wall = time.monotonic() - wall0
    server_cpu = server.cpu_seconds() - cpu0
    others = (machine_busy() - busy0) - server_cpu - (time.process_time() - own0)
    rss_after, hwm_after = server.memory()
    return Joins(
        all_ms, first_ms, rss_start, rss_after, hwm_after,
        1000 * server_cpu / joins, 100 * others / wall,
    )  # fmt: skip


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- kill -9


class Client(asyncio.Protocol):
    """One connection of a kill round: records every ``seq`` and message it sees; a flooder
    also keeps ``WINDOW`` of its own messages unconfirmed, alternating between the rooms."""

    def __init__(self, name: str, flooding: bool, rng: random.Random) -> None:
        self.name = name
        self.flooding = flooding
        self.rng = rng
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.states: dict[str, int] = {}  # room -> seq in its room frame
        self.max_seq: dict[str, int] = {}  # room -> highest seq of any live event
        self.seqs: list[tuple[str, int]] = []  # every live event's (room, seq)
        self.seen: set[tuple[str, int, str | None]] = set()
        self.echoed: set[tuple[str, int, str | None]] = set()
        self.errors: list[str] = []
        self.sent = 0
        self.unconfirmed = 0
        self.go = False
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.closed = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(encode(Hello(version=2, name=self.name, rooms=list(KILL_ROOMS))))

    def data_received(self, data: bytes) -> None:
        *lines, self.buf = (self.buf + data).split(b"\n")
        for line in lines:
            frame = DECODE(line)
            if frame.type == "room":
                assert frame.room is not None
                assert frame.seq is not None
                self.states[frame.room] = frame.seq
                if len(self.states) == len(KILL_ROOMS) and not self.joined.done():
                    self.joined.set_result(None)
            elif frame.type == "error":
                self.errors.append(f"{frame.code}: {frame.message}")
            elif frame.seq is not None and frame.room is not None and frame.history is not True:
                self.seqs.append((frame.room, frame.seq))
                if frame.seq > self.max_seq.get(frame.room, 0):
                    self.max_seq[frame.room] = frame.seq
                if frame.type == "message":
                    key = (frame.room, frame.seq, frame.id)
                    self.seen.add(key)
                    if frame.name == self.name:
                        self.echoed.add(key)
                        self.unconfirmed -= 1
        if self.go:
            self.top_up()

    def top_up(self) -> None:
        if not self.flooding or self.transport is None or self.transport.is_closing():
            return
        out = []
        while self.unconfirmed < WINDOW:
            self.sent += 1
            self.unconfirmed += 1
            room = KILL_ROOMS[self.sent % len(KILL_ROOMS)]
            text = f"{self.name} message {self.sent} " + "x" * self.rng.randint(40, 80)
            out.append(encode(Say(text=text, room=room, id=f"{self.name}.{self.sent}")))
        self.transport.write(b"".join(out))

    def say(self, room: str, text: str) -> None:
        assert self.transport is not None
        self.sent += 1
        self.transport.write(encode(Say(text=text, room=room, id=f"{self.name}.{self.sent}")))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"{self.name} closed before joining"))
        if not self.closed.done():
            self.closed.set_result(None)


async def connect(port: int, name: str, flooding: bool, rng: random.Random) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(name, flooding, rng), "127.0.0.1", port)
    await asyncio.wait_for(client.joined, 10)
    return client


@dataclass
class KillRound:
    after_s: float
    sent: int = 0
    echoed: int = 0
    seen: int = 0
    kept: int = 0
    echoed_missing: int = 0
    seen_missing: int = 0
    reused: int = 0
    checked_seqs: int = 0
    restart_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def kept_in_file(path: Path, floors: dict[str, int]) -> set[tuple[str, int, str | None]]:
    """The messages of the kill rooms in the file above each room's ``floor``."""
    conn = sqlite3.connect(path)
    try:
        kept: set[tuple[str, int, str | None]] = set()
        for room, floor in floors.items():
            kept.update(
                (room, seq, msgid)
                for seq, msgid in conn.execute(
                    "SELECT m.seq, m.msgid FROM messages m JOIN rooms r ON r.id = m.room_id"
                    " WHERE r.name = ? AND m.seq > ?",
                    (room, floor),
                )
            )
    finally:
        conn.close()
    return kept


async def kill_round(
    number: int, server: Server, folder: Path, args: argparse.Namespace, rng: random.Random
) -> tuple[KillRound, Server]:
    flooders = [
        await connect(server.port, f"k{number}f{i}", True, rng) for i in range(args.flooders)
    ]
    readers = [
        await connect(server.port, f"k{number}r{i}", False, rng) for i in range(args.readers)
    ]
    clients = flooders + readers
    floors = {room: min(c.states[room] for c in clients) for room in KILL_ROOMS}
    result = KillRound(after_s=rng.uniform(0.3, 1.2))
    for client in flooders:
        client.go = True
        client.top_up()
    await asyncio.sleep(result.after_s)
    server.kill()  # mid-stream
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), 30)
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    before: dict[str, int] = {}
    for client in clients:
        for room, seq in [*client.max_seq.items(), *client.states.items()]:
            before[room] = max(before.get(room, 0), seq)
    seen = set().union(*(c.seen for c in clients))
    echoed = set().union(*(c.echoed for c in flooders))
    server = Server(server.path, folder)  # the same file
    result.restart_s = server.start_seconds
    kept = kept_in_file(server.path, floors)
    result.sent = sum(c.sent for c in flooders)
    result.echoed, result.seen, result.kept = len(echoed), len(seen), len(kept)
    result.echoed_missing = len(echoed - kept)
    result.seen_missing = len(seen - kept)
    result.errors = [e for c in clients for e in c.errors]
    # After the restart, every seq given out must be above all that anyone saw before.
    checker = await connect(server.port, f"k{number}check", False, rng)
    for room in KILL_ROOMS:
        checker.say(room, f"after kill {number}")
    end = time.monotonic() + 10
    while sum(1 for key in checker.seen if key[2] and key[2].startswith(checker.name)) < len(
        KILL_ROOMS
    ):
        if time.monotonic() > end:
            result.errors.append("the checker's messages did not come back")
            break
        await asyncio.sleep(0.01)
    result.checked_seqs = len(checker.seqs)
    # the room frame's seq may equal the last one before (nothing taken since); new ones not
    result.reused = sum(1 for room, seq in checker.states.items() if seq < before.get(room, 0))
    result.reused += sum(1 for room, seq in checker.seqs if seq <= before.get(room, 0))
    assert checker.transport is not None
    checker.transport.write(encode(Bye()))
    await asyncio.wait_for(checker.closed, 10)
    return result, server


async def run_kills(
    server: Server, folder: Path, args: argparse.Namespace
) -> tuple[list[KillRound], Server]:
    rng = random.Random(args.seed + 1)  # noqa: S311  only timing
    rounds = []
    for number in range(1, args.kills + 1):
        result, server = await kill_round(number, server, folder, args, rng)
        rounds.append(result)
        progress(
            f"  kill {number}: after {result.after_s:.2f} s, {result.echoed} echoed, "
            f"{result.seen} seen, {result.echoed_missing} echoed missing, "
            f"{result.reused} seq reused, restart {result.restart_s:.2f} s"
        )
    return rounds, server


# --------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def machine_lines(db: Path) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.M)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    fs = "?"
    best = ""
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        inside = str(db.resolve()).startswith(parts[1].rstrip("/") + "/")
        if inside and len(parts[1]) >= len(best):
            best, fs = parts[1], parts[2]
    return [
        f"- {os.cpu_count()} CPUs (`nproc`), {model.group(1) if model else 'unknown CPU'}",
        f"- Linux {platform.release()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, chatctl {__version__} (commit {head or '?'})",
        f"- the server's event loop: {choose()[0]}; the file on {fs} ({db.parent})",
        f"- {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]


def mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def report(
    db: Path,
    facts: FileFacts,
    built: float | None,
    start_s: float,
    joins: Joins,
    kills: list[KillRound],
) -> str:
    lines = ["### Machine", "", *machine_lines(db), ""]
    how = f"built in {built:.1f} s" if built is not None else "reused"
    lines += [
        "### The file",
        "",
        f"{facts.messages:,} messages in {len(facts.rooms)} rooms, {mb(facts.bytes)} ({how}); "
        f"`chatctl serve --history FILE --rate 0` listening {start_s:.2f} s after it was "
        "started.",
        "",
        "### Results",
        "",
        "| measure | result | target | met |",
        "| --- | --- | --- | --- |",
    ]
    j = joins
    p50, p99 = percentile(j.all_ms, 0.5), percentile(j.all_ms, 0.99)
    lines.append(
        f"| join replaying {REPLAY} ({len(j.all_ms)} joins, {len(facts.rooms)} rooms, one at a "
        f"time): p50 / p99 / max | {p50:.2f} / {p99:.2f} / {max(j.all_ms):.2f} ms "
        f"| p99 ≤ {JOIN_TARGET_MS:g} ms | {verdict(p99 <= JOIN_TARGET_MS)} |"
    )
    lines.append(
        f"| the first join of each room after start: p50 / max "
        f"| {statistics.median(j.first_ms):.2f} / {max(j.first_ms):.2f} ms | | |"
    )
    lines.append(
        f"| server CPU per join; others' CPU meanwhile | {j.server_cpu_ms_per_join:.2f} ms; "
        f"{j.others_percent:.0f} % | | |"
    )
    lines.append(
        f"| server RSS after the joins (VmRSS; after start {mb(j.rss_start)}, peak "
        f"{mb(j.hwm_after)}) | {mb(j.rss_after)} | ≤ {mb(RSS_TARGET)} "
        f"| {verdict(j.rss_after <= RSS_TARGET)} |"
    )
    if kills:
        echoed = sum(k.echoed for k in kills)
        seen = sum(k.seen for k in kills)
        missing = sum(k.echoed_missing for k in kills)
        seen_missing = sum(k.seen_missing for k in kills)
        reused = sum(k.reused for k in kills)
        checked = sum(k.checked_seqs + len(KILL_ROOMS) for k in kills)
        errors = sum(len(k.errors) for k in kills)
        lines += [
            f"| kill -9 mid-stream x{len(kills)}: echoed messages missing after restart "
            f"| {missing} of {echoed:,} | 0 | {verdict(missing == 0)} |",
            f"| kill -9: messages any client saw, missing | {seen_missing} of {seen:,} | 0 "
            f"| {verdict(seen_missing == 0)} |",
            f"| kill -9: seq reused after restart (of {checked} checked) | {reused} | 0 "
            f"| {verdict(reused == 0)} |",
            f"| kill -9: restart on the same file, median | "
            f"{statistics.median(k.restart_s for k in kills):.2f} s | | |",
            f"| kill -9: error frames to the clients | {errors} | | |",
        ]
        lines += [
            "",
            "### kill -9 rounds",
            "",
            "| round | killed after | sent | echoed | seen | in the file | echoed missing "
            "| seen missing | seq reused | restart |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for n, k in enumerate(kills, 1):
            lines.append(
                f"| {n} | {k.after_s:.2f} s | {k.sent:,} | {k.echoed:,} | {k.seen:,} "
                f"| {k.kept:,} | {k.echoed_missing} | {k.seen_missing} | {k.reused} "
                f"| {k.restart_s:.2f} s |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--joins", type=int, default=240)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--flooders", type=int, default=3)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--db", type=Path, help="the file: built there if missing, kept, reused if present"
    )
    args = parser.parse_args()
    if args.rooms < 1 or args.messages < args.rooms * REPLAY:
        sys.exit(f"--messages must give every room at least {REPLAY}")
    folder = Path(tempfile.mkdtemp(prefix="chatctl-history-bench-"))
    server: Server | None = None
    try:
        db = args.db or folder / "history.sqlite3"
        built = None
        if not db.exists():
            progress(f"building {args.messages:,} messages in {args.rooms} rooms: {db}")
            built = build(db, args.messages, args.rooms, args.seed)
            progress(f"  built in {built:.1f} s")
        facts = file_facts(db, args.rooms)
        server = Server(db, folder)
        start_s = server.start_seconds
        progress(f"server on port {server.port} ({start_s:.2f} s); {args.joins} joins")
        joins = run_joins(server, facts, args.joins)
        progress(
            f"  p50 {percentile(joins.all_ms, 0.5):.2f} ms, p99 "
            f"{percentile(joins.all_ms, 0.99):.2f} ms, RSS {mb(joins.rss_after)}"
        )
        kills: list[KillRound] = []
        if args.kills:
            progress(f"kill -9, {args.kills} rounds")
            kills, server = asyncio.run(run_kills(server, folder, args))
        sys.stdout.write(report(db, facts, built, start_s, joins, kills))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
