"""Load generator behind ``chatctl bench``: many clients on raw sockets, measured from outside.

No terminal code here (``chatctl.ui.bench`` draws the table and the progress
bar). The parent process only orchestrates: it starts ``chatctl serve`` on
loopback (pacing off, limits raised to fit) or uses ``host``/``port``, starts
``procs`` worker processes that each own a share of the clients, says go,
waits for the run and the drain, and gathers the figures. Each worker runs one
asyncio loop with a ``BufferedProtocol`` per client: no streams, no Rich, no
frame objects on the receive path.

How it measures:

* Every message text carries a mark, the sending process and client, a
  sequence number and ``time.monotonic_ns()`` taken just before the write
  (``#B0# 3 17 123456789 xxx``). CLOCK_MONOTONIC is system-wide on Linux, so
  a receiver in another process subtracts it directly.
* Receivers do not parse lines. Per read they count newlines and marks with
  ``bytearray.count`` (C speed) and parse only the first and the last message
  of the read for a latency sample, so one core takes millions of deliveries
  per second. Lines without a mark (welcomes, joins, leaves, errors, ncat's
  announcements) are rare and are parsed one by one; error codes are counted.
* ``fanout`` and ``stuck`` are window-limited: a worker keeps at most
  ``senders * window`` of its messages in flight, where a message leaves the
  window once the slowest receiving client, in any worker, has it. So no
  receiver falls behind without bound, and the rate is whatever the server
  and the generator together sustain.
* ``rate`` sends at a fixed total rate, open loop, and measures latency.
* ``idle`` connects as many clients as it can within the time and reads the
  server's resident memory before and after.
* Messages lost = deliveries expected (accepted messages times receivers)
  minus deliveries counted, after a drain.
* Server CPU and peak RSS come from ``/proc/<pid>`` (the server bench started,
  or ``server_pid``); the generator's CPU from ``getrusage`` in each worker.

Raw mode (``raw=True``) speaks plain lines instead of chatctl frames, for line
relays such as ``ncat --chat`` and ``benchmarks/relay.py``; those do not send a
line back to its sender, so a message has one receiver fewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing as mp
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from chatctl.protocol import PROTOCOL_VERSION, Hello, Pong, Say, StatusRequest, encode

SCENARIOS = ("fanout", "rate", "idle", "stuck")

#: Every message text starts with ``~chatctl-bench~<proc>#``; nothing else a server sends
#: contains the mark. Counting it is most of a receiver's work, and ``bytes.count`` skips
#: ahead by up to the pattern's length: this 15-byte mark is counted 2.8x faster than ``#B``.
MARK = b"~chatctl-bench~"
#: The line a raw-mode idle run broadcasts to check that every idle client is really served.
PROBE = b"#PROBE"
#: Smallest message text: mark, ids, sequence number and timestamp must fit.
MIN_SIZE = 64
MAX_SIZE = 4096
_READ_BUFFER = 64 * 1024
_MAX_SAMPLES = 1_000_000
_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Connections being opened at once. ncat listens with a backlog of 10: more at once overflow
#: its accept queue and the kernel leaves clients connected on one side only for seconds.
_CONNECTING = 64
_CONNECTING_RAW = 8
_TCP_STATES = {1: "established", 7: "reset by the server", 8: "closed by the server"}


class BenchError(Exception):
    """A bench that cannot run (bad options, no server); the message is one line for a human."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class BenchConfig:
    """What ``chatctl bench`` can set. ``None`` means the scenario's default."""

    scenario: str = "fanout"
    clients: int | None = None
    senders: int | None = None
    #: Message text length in bytes (chatctl frames add ~30 bytes of JSON around it).
    size: int = 64
    #: fanout/stuck: messages in flight per sender.
    window: int = 32
    #: rate: total messages per second over all senders.
    rate: float = 200.0
    seconds: float = 5.0
    procs: int = 1
    #: An existing server; ``None`` starts ``chatctl serve`` on loopback.
    host: str | None = None
    port: int | None = None
    #: Plain lines instead of chatctl frames (ncat --chat, a line relay).
    raw: bool = False
    #: Read CPU and memory of this process (a server bench did not start).
    server_pid: int | None = None
    #: idle: clients join the room (``hello``) instead of only connecting (``status``).
    join: bool = False
    #: Seconds without a new delivery after which the drain gives up.
    drain_timeout: float = 3.0

    def resolved(self) -> BenchConfig:
        """Fill in the scenario defaults and check the combination."""
        if self.scenario not in SCENARIOS:
            raise BenchError(f"unknown scenario {self.scenario!r}: one of {', '.join(SCENARIOS)}")
        clients = self.clients or (1000 if self.scenario == "idle" else 100)
        if self.scenario == "idle":
            senders = 0
        elif self.senders is not None:
            senders = self.senders
        else:
            senders = clients if self.scenario == "rate" else min(10, clients)
        if self.scenario != "idle" and clients < 2:
            raise BenchError("a room needs at least 2 clients")
        if not 0 < senders <= clients and self.scenario != "idle":
            raise BenchError(f"--senders must be between 1 and the number of clients ({clients})")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise BenchError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} bytes")
        if self.procs < 1 or self.procs > max(1, clients):
            raise BenchError("--procs must be at least 1 and at most the number of clients")
        if self.window < 1:
            raise BenchError("--window must be at least 1")
        if self.seconds <= 0 or self.rate <= 0:
            raise BenchError("--seconds and --rate must be positive")
        if (self.host is None) != (self.port is None):
            raise BenchError("give both --host and --port for an existing server, or neither")
        if self.raw and self.port is None:
            raise BenchError("--raw needs --host and --port: bench only starts chatctl servers")
        if self.raw and self.join:
            raise BenchError("--join is for chatctl servers; raw line relays have no handshake")
        return replace(self, clients=clients, senders=senders)

    @property
    def spawns_server(self) -> bool:
        return self.port is None

    @property
    def echo(self) -> bool:
        """Does the server send a message back to its sender? chatctl does, line relays do not."""
        return not self.raw


# --------------------------------------------------------------------------- results


@dataclass
class Latency:
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    samples: int = 0


@dataclass
class ServerFigures:
    spawned: bool
    pid: int | None = None
    command: list[str] = field(default_factory=list)
    cpu_seconds: float | None = None
    cpu_percent: float | None = None
    peak_rss_bytes: int | None = None
    rss_bytes: int | None = None
    alive: bool | None = None
    #: The ``server`` object of a chatctl status reply at the end (None for raw servers).
    status: dict[str, Any] | None = None


@dataclass
class GeneratorFigures:
    procs: int
    cpu_seconds: float = 0.0
    cpu_percent: float = 0.0
    #: The busiest worker; near 100 % means the generator, not the server, set the pace.
    max_proc_cpu_percent: float = 0.0


@dataclass
class MachineFigures:
    """The whole machine during the run, to see whether something else competed for CPU."""

    cpus: int
    #: All processes together, in percent of one CPU (200 % = two CPUs busy).
    busy_percent: float | None = None
    #: What neither the server (when known) nor the generator used: other programs.
    other_percent: float | None = None


@dataclass
class IdleFigures:
    target: int
    connected: int = 0
    seconds_to_connect: float | None = None
    #: Clients that answered: status reply or welcome (chatctl), the broadcast probe (raw).
    confirmed: int = 0
    server_rss_before_bytes: int | None = None
    server_rss_after_bytes: int | None = None
    server_rss_per_client_bytes: float | None = None
    #: chatctl only: how long ``status`` took with everyone connected (connect included).
    status_ms: float | None = None
    connect_errors: dict[str, int] = field(default_factory=dict)


@dataclass
class StuckFigures:
    cut_off: bool
    how: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class BenchResult:
    scenario: str
    host: str
    port: int
    raw: bool
    clients: int
    senders: int
    size: int
    window: int
    rate: float | None
    seconds: float
    server: ServerFigures
    generator: GeneratorFigures
    machine: MachineFigures
    clients_joined: int = 0
    messages_sent: int = 0
    messages_refused: int = 0
    deliveries: int = 0
    deliveries_expected: int = 0
    lost: int = 0
    duration_seconds: float = 0.0
    #: When the last delivery arrived, in seconds after the start.
    last_delivery_seconds: float | None = None
    deliveries_per_second: float = 0.0
    messages_per_second: float = 0.0
    deliveries_per_server_cpu_second: float | None = None
    latency: Latency = field(default_factory=Latency)
    #: Error frames received, by code (throttled, server_full, ...).
    errors: dict[str, int] = field(default_factory=dict)
    #: Our own clients that the server disconnected, by reason.
    disconnected: dict[str, int] = field(default_factory=dict)
    bottleneck: str = "unknown"
    idle: IdleFigures | None = None
    stuck: StuckFigures | None = None
    #: Sentences a reader must see: what shaped the figures besides speed.
    notes: list[str] = field(default_factory=list)

    def to_builtins(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


@dataclass(frozen=True)
class BenchProgress:
    """What the parent knows while the bench runs, for a progress bar."""

    phase: str  # "starting", "connecting", "running", "draining", "finishing"
    elapsed: float
    total: float
    clients: int = 0
    messages: int = 0
    deliveries: int = 0


ProgressCallback = Callable[[BenchProgress], None]


def _ignore(progress: BenchProgress) -> None:
    """The default progress callback."""


# --------------------------------------------------------------------------- shared state

# One int64 array shared by the parent and the workers, without a lock: each
# slot has one writer. Layout: [state, start_ns] then one block per worker.
_STATE, _START = 0, 1
_SETUP, _GO, _FINISH = 0, 1, 2
_READY, _CONNECTED, _SENT, _REFUSED, _DELIVERED, _OTHER, _PROBED = range(7)
_FIXED = 7  # then ``procs`` progress slots: messages of worker p that all my clients have


class _Slots:
    def __init__(self, shared: Any, procs: int) -> None:
        self.shared = shared
        self.procs = procs
        self.block = _FIXED + procs

    @staticmethod
    def size(procs: int) -> int:
        return 2 + procs * (_FIXED + procs)

    def at(self, proc: int, slot: int) -> int:
        return 2 + proc * self.block + slot

    def get(self, proc: int, slot: int) -> int:
        return int(self.shared[self.at(proc, slot)])

    def set(self, proc: int, slot: int, value: int) -> None:
        self.shared[self.at(proc, slot)] = value

    def total(self, slot: int) -> int:
        return sum(self.get(p, slot) for p in range(self.procs))

    def progress_at(self, reader: int, sender: int) -> int:
        return 2 + reader * self.block + _FIXED + sender


# --------------------------------------------------------------------------- worker


@dataclass(frozen=True)
class _Plan:
    """One worker's share of the run."""

    index: int
    procs: int
    scenario: str
    host: str
    port: int
    raw: bool
    join: bool
    clients: int
    senders: int
    #: Global number of this worker's first client, for names and sender ids.
    first: int
    size: int
    window: int
    rate: float
    seconds: float
    tag: str


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _Client(asyncio.BufferedProtocol):
    """One bench client: counts what it receives, sends what the pump tells it to."""

    def __init__(self, worker: _Worker, name: str, sender_id: int | None) -> None:
        self.w = worker
        self.name = name
        self.sender_id = sender_id
        self.buf = bytearray(_READ_BUFFER)
        self.view = memoryview(self.buf)
        self.filled = 0
        self.rx = [0] * worker.plan.procs  # messages received, by sending worker
        self.sent = 0
        self.seq = 0
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False
        self.joined = False
        self.prefix = f"{MARK.decode()}{worker.plan.index}# {sender_id} "

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.w.plan.raw:
            self.joined = True
            self.ready.set_result(None)
        else:
            transport.write(encode(Hello(version=PROTOCOL_VERSION, name=self.name)))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.filled == len(self.buf):  # a line longer than the buffer (a big welcome)
            self.view.release()
            self.buf = self.buf + bytearray(len(self.buf))
            self.view = memoryview(self.buf)
        return self.view[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic_ns()
        end = self.filled + nbytes
        buf = self.buf
        stop = buf.rfind(b"\n", 0, end) + 1
        if not stop:
            self.filled = end
            return
        marks = buf.count(MARK, 0, stop)
        if marks:
            w = self.w
            rx = self.rx
            if len(rx) == 1:
                rx[0] += marks
            else:
                for p, mark in enumerate(w.marks):
                    rx[p] += buf.count(mark, 0, stop)
            w.delivered += marks
            w.last_ns = now
            if w.sampling:
                first = buf.find(MARK, 0, stop)
                w.sample(buf, first, now)
                if marks > 1:
                    w.sample(buf, buf.rfind(MARK, 0, stop), now)
            w.wake()
        if buf.count(b"\n", 0, stop) != marks:
            self._other_lines(bytes(buf[:stop]))
        rest = end - stop
        if rest:
            buf[:rest] = buf[stop:end]
        self.filled = rest

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed by the server before joining"))
        self.w.client_lost(self)

    # the rare lines

    def _other_lines(self, chunk: bytes) -> None:
        w = self.w
        for line in chunk.split(b"\n"):
            if not line.strip() or MARK in line:
                continue
            w.other += 1
            if w.plan.raw:
                continue  # ncat's "<announce> ..." lines
            try:
                frame = msgspec.json.decode(line)
            except msgspec.DecodeError:
                w.errors["not_json"] += 1
                continue
            if not isinstance(frame, dict):
                continue
            kind = frame.get("type")
            if kind == "welcome":
                self.joined = True
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind == "error":
                code = str(frame.get("code"))
                w.errors[code] += 1
                if not self.joined:
                    if not self.ready.done():
                        self.ready.set_exception(ConnectionRefusedError(code))
                elif self.sender_id is not None:
                    w.refused += 1  # a say the server did not relay
                    w.wake()
            elif kind == "leave":
                w.leaves[(str(frame.get("name")), str(frame.get("reason")))] += 1
            elif kind == "ping" and self.transport is not None:
                self.transport.write(encode(Pong()))  # long runs: the server checks we live
            elif kind == "shutdown":
                w.errors["shutdown"] += 1

    # sending

    def send_messages(self, count: int, now_ns: int) -> None:
        transport = self.transport
        if transport is None or self.lost:
            return
        size, raw = self.w.plan.size, self.w.plan.raw
        lines = []
        for _ in range(count):
            self.seq += 1
            text = f"{self.prefix}{self.seq} {now_ns} "
            text += "x" * max(1, size - len(text))
            lines.append((text + "\n").encode() if raw else encode(Say(text=text)))
        transport.write(b"".join(lines))
        self.sent += count
        self.w.sent += count


class _Idle(asyncio.Protocol):
    """An idle client: answers nothing, reads everything, notes its first line and the probe."""

    def __init__(self, worker: _Worker) -> None:
        self.w = worker
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.probed = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b'"type":"ping"' in data and self.transport is not None and not self.w.plan.raw:
            self.transport.write(encode(Pong()))
        if not self.answer.done():
            self.head += data
            if b"\n" in self.head:
                self.answer.set_result(self.head.split(b"\n", 1)[0])
        if not self.probed and PROBE in data:
            self.probed = True
            self.w.probed += 1

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.answer.done():
            self.answer.set_exception(ConnectionError("closed by the server"))
        self.w.idle_lost += 1


class _Worker:
    """One generator process: its clients, its pump, its counters."""

    def __init__(self, plan: _Plan, slots: _Slots) -> None:
        self.plan = plan
        self.slots = slots
        self.marks = [MARK + b"%d#" % p for p in range(plan.procs)]
        self.clients: list[_Client] = []
        self.senders: list[_Client] = []
        self.sent = 0
        self.refused = 0
        self.delivered = 0
        self.other = 0
        self.probed = 0
        self.idle_lost = 0
        self.last_ns = 0
        self.latencies = array("q")
        self.sampling = False
        self.errors: Counter[str] = Counter()
        self.leaves: Counter[tuple[str, str]] = Counter()
        self.disconnected = 0
        self.connect_errors: Counter[str] = Counter()
        self._waiter: asyncio.Future[None] | None = None
        self._rotate = 0

    # called from the protocols

    def sample(self, buf: bytearray, at: int, now: int) -> None:
        fields = bytes(buf[at : at + 80]).split(b" ", 4)
        try:
            latency = now - int(fields[3])
        except (IndexError, ValueError):
            return  # a line a relay cut in two (ncat prefixes each read it relays)
        if 0 <= latency < 600_000_000_000:
            self.latencies.append(latency)
            if len(self.latencies) >= _MAX_SAMPLES:
                self.sampling = False

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def client_lost(self, client: _Client) -> None:
        if client.joined and self.state() < _FINISH:
            self.disconnected += 1
        self.wake()

    # shared counters

    def publish(self) -> None:
        s, i = self.slots, self.plan.index
        s.set(i, _SENT, self.sent)
        s.set(i, _REFUSED, self.refused)
        s.set(i, _DELIVERED, self.delivered)
        s.set(i, _OTHER, self.other)
        s.set(i, _PROBED, self.probed)
        live = [c for c in self.clients if not c.lost]
        if not live:
            return
        for p in range(self.plan.procs):
            if p == i and not self.plan.raw:
                low = min(c.rx[p] for c in live)
            elif p == i:  # a relay does not send my own lines back to me: count them as had
                low = min(c.rx[p] + c.sent for c in live)
            else:
                low = min(c.rx[p] for c in live)
            s.shared[s.progress_at(i, p)] = low

    def acked(self) -> int:
        """My messages that every live client of every worker has received."""
        s, i = self.slots, self.plan.index
        return min(int(s.shared[s.progress_at(q, i)]) for q in range(self.plan.procs))

    def state(self) -> int:
        return int(self.slots.shared[_STATE])

    async def _publisher(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(0.02)

    async def _until_state(self, state: int) -> None:
        # The parent writes shared memory: there is nothing to await, so poll.
        while self.state() < state:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    async def _nap(self, seconds: float) -> None:
        """Sleep until a receiver wakes us or ``seconds`` pass, whichever is first."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        handle = loop.call_later(seconds, self.wake)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    # the run

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        _raise_nofile(plan.clients + 256)
        publisher = asyncio.create_task(self._publisher())
        try:
            if plan.scenario == "idle":
                return await self._run_idle()
            return await self._run_room()
        finally:
            publisher.cancel()

    async def _connect_all(self) -> None:
        plan = self.plan
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(_CONNECTING_RAW if plan.raw else _CONNECTING)

        async def one(n: int) -> None:
            number = plan.first + n
            sender_id = number if n < plan.senders else None
            client = _Client(self, f"bench{plan.tag}-{number}", sender_id)
            async with gate:
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: client, plan.host, plan.port), 10
                    )
                    await asyncio.wait_for(client.ready, 10)
                except (OSError, TimeoutError) as exc:
                    self.connect_errors[_why(exc)] += 1
                    if client.transport is not None:
                        client.transport.abort()
                    return
            self.clients.append(client)
            if sender_id is not None:
                self.senders.append(client)
            self.slots.set(plan.index, _CONNECTED, len(self.clients))

        await asyncio.gather(*(one(n) for n in range(plan.clients)))
        self.clients.sort(key=lambda c: c.name)
        self.senders.sort(key=lambda c: c.name)

    async def _run_room(self) -> dict[str, Any]:
        plan, slots = self.plan, self.slots
        await self._connect_all()
        slots.set(plan.index, _CONNECTED, len(self.clients))
        slots.set(plan.index, _READY, 1)
        await self._until_state(_GO)
        start_ns = int(slots.shared[_START])
        cpu0 = _cpu_seconds()
        self.sampling = True
        end_ns = start_ns + int(plan.seconds * 1e9)
        await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        if plan.scenario == "rate":
            await self._pump_rate(start_ns, end_ns)
        else:
            await self._pump_window(end_ns)
        self.publish()
        await self._until_state(_FINISH)
        cpu = _cpu_seconds() - cpu0
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()
        return self._report(cpu)

    async def _pump_window(self, end_ns: int) -> None:
        senders = self.senders
        window = self.plan.window
        capacity = len(senders) * window
        while senders:
            now = time.monotonic_ns()
            if now >= end_ns:
                return
            self.publish()
            room = capacity - (self.sent - self.refused - self.acked())
            if room > 0:
                live = [s for s in senders if not s.lost]
                if not live:
                    return
                each = max(1, min(window, -(-room // len(live))))
                self._rotate = (self._rotate + 1) % len(live)
                for sender in live[self._rotate :] + live[: self._rotate]:
                    count = min(each, room)
                    sender.send_messages(count, now)
                    room -= count
                    if room <= 0:
                        break
            await self._nap(min(0.002, (end_ns - now) / 1e9))
        await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))

    async def _pump_rate(self, start_ns: int, end_ns: int) -> None:
        plan = self.plan
        senders = self.senders
        interval = 1e9 * plan.procs / plan.rate  # this worker's share of the rate
        offset = interval * plan.index / plan.procs  # interleave the workers
        total = int((end_ns - start_ns - offset) / interval) + 1
        done = 0
        while done < total and senders:
            now = time.monotonic_ns()
            if now >= end_ns:
                break
            due = min(total, int((now - start_ns - offset) / interval) + 1)
            while done < due:
                senders[done % len(senders)].send_messages(1, now)
                done += 1
            next_ns = start_ns + offset + done * interval
            await asyncio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
        await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))

    async def _run_idle(self) -> dict[str, Any]:
        plan, slots = self.plan, self.slots
        loop = asyncio.get_running_loop()
        slots.set(plan.index, _READY, 1)  # nothing to set up
        await self._until_state(_GO)
        start_ns = int(slots.shared[_START])
        end_ns = start_ns + int(plan.seconds * 1e9)
        cpu0 = _cpu_seconds()
        gate = asyncio.Semaphore(_CONNECTING_RAW if plan.raw else 2 * _CONNECTING)
        idle: list[_Idle] = []
        confirmed = 0
        last_ns = 0

        async def one(n: int) -> None:
            nonlocal confirmed, last_ns
            async with gate:
                left = (end_ns - time.monotonic_ns()) / 1e9
                if left <= 0:
                    return
                client = _Idle(self)
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: client, plan.host, plan.port), left
                    )
                    if not plan.raw:
                        assert client.transport is not None
                        name = f"idle{plan.tag}-{plan.first + n}"
                        # Without --join: a status request, which (unlike a ping) counts as
                        # a greeting, so the server's hello timeout leaves the client be.
                        frame = (
                            Hello(version=PROTOCOL_VERSION, name=name)
                            if plan.join
                            else StatusRequest()
                        )
                        client.transport.write(encode(frame))
                        first = await asyncio.wait_for(client.answer, max(0.001, left))
                        if b'"type":"error"' in first:
                            code = msgspec.json.decode(first).get("code", "error")
                            self.errors[str(code)] += 1
                            client.transport.abort()
                            return
                except (OSError, TimeoutError, msgspec.DecodeError) as exc:
                    self.connect_errors[_why(exc)] += 1
                    if client.transport is not None:
                        client.transport.abort()
                    return
                idle.append(client)
                confirmed += 1
                last_ns = time.monotonic_ns()
                slots.set(plan.index, _CONNECTED, confirmed)

        await asyncio.gather(*(one(n) for n in range(plan.clients)))
        alive = [c for c in idle if not c.lost]
        slots.set(plan.index, _CONNECTED, len(alive))
        slots.set(plan.index, _READY, 2)  # done connecting
        await self._until_state(_FINISH)
        cpu = _cpu_seconds() - cpu0
        for client in idle:
            if client.transport is not None:
                client.transport.abort()
        report = self._report(cpu)
        report["idle_connected"] = len([c for c in idle if not c.lost])
        report["idle_confirmed"] = confirmed
        report["idle_probed"] = self.probed
        report["idle_last_ns"] = last_ns
        return report

    def _report(self, cpu: float) -> dict[str, Any]:
        return {
            "index": self.plan.index,
            "clients": len(self.clients),
            "sent": self.sent,
            "refused": self.refused,
            "delivered": self.delivered,
            "last_ns": self.last_ns,
            "latencies": self.latencies.tobytes(),
            "errors": dict(self.errors),
            "connect_errors": dict(self.connect_errors),
            "leaves": [[name, reason, n] for (name, reason), n in self.leaves.items()],
            "disconnected": self.disconnected,
            "cpu": cpu,
        }


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]  # an error code the server answered the hello with
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    if isinstance(exc, msgspec.DecodeError):
        return "not_json"
    return "closed"


def _worker_entry(plan: _Plan, shared: Any, conn: Connection) -> None:
    """Entry point of a worker process (spawned, so it imports only this module)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        report = asyncio.run(_Worker(plan, _Slots(shared, plan.procs)).run())
    except BaseException as exc:
        report = {"failed": f"{type(exc).__name__}: {exc}"}
        _Slots(shared, plan.procs).set(plan.index, _READY, -1)
    conn.send(report)
    conn.close()


# --------------------------------------------------------------------------- the server


def _proc_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _proc_memory(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) in bytes: resident now, and its peak."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, flags=re.M))
    rss, hwm = found.get("VmRSS"), found.get("VmHWM")
    return (int(rss) * 1024 if rss else None, int(hwm) * 1024 if hwm else None)


def _machine_busy() -> float | None:
    """Seconds of CPU used by everything on the machine since boot."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK  # all but idle and iowait


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _serve_options() -> set[str]:
    """The options this ``chatctl serve`` knows (pacing and limits arrived in 0.2)."""
    out = subprocess.run(
        [sys.executable, "-m", "chatctl", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**_child_env(), "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
        check=False,
    ).stdout
    return set(re.findall(r"--[a-z][a-z-]+", out))


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}


class _SpawnedServer:
    """``chatctl serve`` on a free loopback port, its log in a temporary file."""

    def __init__(self, cfg: BenchConfig) -> None:
        assert cfg.clients is not None
        known = _serve_options()
        room = cfg.clients + 64
        wanted = {
            "--rate": "0",  # flood pacing off: measure speed, not the policy
            "--max-clients": str(room),
            "--max-per-address": str(room),
            "--max-new-per-minute": str(max(100_000, room * 60)),
        }
        extra = [x for option, value in wanted.items() if option in known for x in (option, value)]
        self.command = ["chatctl", "serve", "--host", "127.0.0.1", "--port", "0", *extra]
        self.log_path = Path(tempfile.mkstemp(prefix="chatctl-bench-", suffix=".log")[1])
        _raise_nofile(room + 256)  # inherited by the server
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chatctl", *self.command[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,  # Ctrl-C in the terminal reaches bench, which stops it
            )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                tail = " / ".join(self.log().strip().splitlines()[-3:])
                self.stop()
                raise BenchError(f"chatctl serve exited with code {self.proc.returncode}: {tail}")
            time.sleep(0.02)
        self.stop()
        raise BenchError("chatctl serve did not say where it listens within 20 s")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _chatctl_status(host: str, port: int, timeout: float = 5.0) -> tuple[dict[str, Any], float]:
    """A raw ``status`` request: (the reply's ``server`` object, milliseconds it took)."""
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode(StatusRequest()))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed before the status reply")
            data += chunk
    elapsed = (time.perf_counter() - started) * 1000
    reply = msgspec.json.decode(data.split(b"\n", 1)[0])
    if not isinstance(reply, dict) or reply.get("type") != "status_reply":
        raise ConnectionError("no status reply")
    server = reply.get("server")
    return (server if isinstance(server, dict) else {}), elapsed


# --------------------------------------------------------------------------- the stuck client


class _StuckClient:
    """A client that joins and never reads again. A small receive buffer, so the kernel
    does not absorb megabytes before the server has to decide what to do with it."""

    def __init__(self, host: str, port: int, raw: bool, name: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        if not raw:
            self.sock.sendall(encode(Hello(version=PROTOCOL_VERSION, name=name)))
            head = b""
            while b"\n" not in head:  # the welcome, then never read again
                chunk = self.sock.recv(1)
                if not chunk:
                    raise BenchError("the stuck client was refused by the server")
                head += chunk
            if b'"welcome"' not in head:
                raise BenchError("the stuck client could not join")
        self.name = name

    def state(self) -> str:
        """How the connection stands; read only once the run is over.

        A reset sent while the stuck client's receive window is zero may not be
        accepted, so the socket can look established until it is read: read
        what is there (for at most a second) until the reset or the end shows.
        """
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        if info[0] != 1:
            return _TCP_STATES.get(info[0], f"tcp state {info[0]}")
        self.sock.settimeout(0.2)
        end = time.monotonic() + 1.0
        try:
            while time.monotonic() < end:
                if not self.sock.recv(1 << 20):
                    return "closed by the server"
        except ConnectionResetError:
            return "reset by the server"
        except TimeoutError:
            pass  # nothing more is coming: the server still holds the connection open
        return "established"

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- orchestration


def _percentile(ordered: list[int], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index] / 1e6


def run_bench(cfg: BenchConfig, on_progress: ProgressCallback = _ignore) -> BenchResult:
    """Run one scenario and return its figures. Raises BenchError if it cannot run."""
    cfg = cfg.resolved()
    on_progress(BenchProgress("starting", 0.0, cfg.seconds))
    server: _SpawnedServer | None = None
    workers: list[mp.process.BaseProcess] = []
    run: _Run | None = None
    pid: int | None
    try:
        if cfg.spawns_server:
            server = _SpawnedServer(cfg)
            host, port, pid = "127.0.0.1", server.port, server.pid
        else:
            assert cfg.host is not None
            assert cfg.port is not None
            host, port, pid = cfg.host, cfg.port, cfg.server_pid
        run = _Run(cfg, host, port, pid, server, on_progress)
        return run.execute(workers)
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
        if run is not None and run.stuck is not None:
            run.stuck.close()
        if server is not None:
            server.stop()
            server.remove_log()


class _Run:
    """The parent's side of one run."""

    def __init__(
        self,
        cfg: BenchConfig,
        host: str,
        port: int,
        pid: int | None,
        server: _SpawnedServer | None,
        on_progress: ProgressCallback,
    ) -> None:
        self.cfg = cfg
        self.host, self.port, self.pid = host, port, pid
        self.server = server
        self.on_progress = on_progress
        self.stuck: _StuckClient | None = None
        self.tag = secrets.token_hex(2)

    def _plans(self) -> list[_Plan]:
        cfg = self.cfg
        assert cfg.clients is not None
        assert cfg.senders is not None
        plans, first = [], 0
        for index in range(cfg.procs):
            clients = cfg.clients // cfg.procs + (index < cfg.clients % cfg.procs)
            senders = cfg.senders // cfg.procs + (index < cfg.senders % cfg.procs)
            plans.append(
                _Plan(
                    index=index,
                    procs=cfg.procs,
                    scenario=cfg.scenario,
                    host=self.host,
                    port=self.port,
                    raw=cfg.raw,
                    join=cfg.join,
                    clients=clients,
                    senders=min(senders, clients),
                    first=first,
                    size=cfg.size,
                    window=cfg.window,
                    rate=cfg.rate,
                    seconds=cfg.seconds,
                    tag=self.tag,
                )
            )
            first += clients
        return plans

    def _progress(self, phase: str, elapsed: float, slots: _Slots) -> None:
        self.on_progress(
            BenchProgress(
                phase,
                elapsed,
                self.cfg.seconds,
                clients=slots.total(_CONNECTED),
                messages=slots.total(_SENT),
                deliveries=slots.total(_DELIVERED),
            )
        )

    def _check_workers(self, slots: _Slots, workers: list[mp.process.BaseProcess]) -> None:
        for p, proc in enumerate(workers):
            if slots.get(p, _READY) < 0 or (not proc.is_alive() and proc.exitcode):
                raise BenchError(f"generator process {p} failed (exit code {proc.exitcode})")

    def execute(self, workers: list[mp.process.BaseProcess]) -> BenchResult:
        cfg = self.cfg
        assert cfg.clients is not None
        ctx = mp.get_context("spawn")
        slots = _Slots(ctx.Array("q", _Slots.size(cfg.procs), lock=False), cfg.procs)
        pipes: list[Connection] = []
        for plan in self._plans():
            receive, send = ctx.Pipe(duplex=False)
            proc: mp.process.BaseProcess = ctx.Process(
                target=_worker_entry, args=(plan, slots.shared, send), daemon=True
            )
            proc.start()
            send.close()
            workers.append(proc)
            pipes.append(receive)

        # set up: connect and join, then let the join notices settle
        setup_end = time.monotonic() + 30 + cfg.clients / 50
        while any(slots.get(p, _READY) == 0 for p in range(cfg.procs)):
            self._check_workers(slots, workers)
            if time.monotonic() > setup_end:
                raise BenchError("the clients could not connect and join in time")
            self._progress("connecting", 0.0, slots)  # setting up: the run has not begun
            time.sleep(0.05)
        self._check_workers(slots, workers)
        joined = slots.total(_CONNECTED)
        if cfg.scenario != "idle":
            if joined < 2:
                raise BenchError(f"only {joined} client(s) could join {self.host}:{self.port}")
            self._settle(slots)
        if cfg.scenario == "stuck":
            self.stuck = _StuckClient(self.host, self.port, cfg.raw, f"stuck{self.tag}")
            self._settle(slots)
        status_before = self._status()
        rss_before, _ = _proc_memory(self.pid) if self.pid else (None, None)
        cpu_before = _proc_cpu(self.pid) if self.pid else None
        busy_before = _machine_busy()

        # go
        start_ns = time.monotonic_ns() + 20_000_000
        slots.shared[_START] = start_ns
        slots.shared[_STATE] = _GO
        idle = None
        if cfg.scenario == "idle":
            idle = self._idle_phase(slots, workers, start_ns, rss_before)
        else:
            self._run_and_drain(slots, workers, start_ns, joined)
        end_ns = time.monotonic_ns()
        cpu_after = _proc_cpu(self.pid) if self.pid else None
        busy_after = _machine_busy()
        rss, peak = _proc_memory(self.pid) if self.pid else (None, None)
        alive = _alive(self.pid) if self.pid else None
        status_after = self._status()

        slots.shared[_STATE] = _FINISH
        self.on_progress(BenchProgress("finishing", cfg.seconds, cfg.seconds))
        reports = []
        for p, receive in enumerate(pipes):
            if not receive.poll(60):
                raise BenchError(f"generator process {p} did not report")
            report = receive.recv()
            if "failed" in report:
                raise BenchError(f"generator process {p} failed: {report['failed']}")
            reports.append(report)
        for proc in workers:
            proc.join(10)
        # Only now: reading the stuck socket to see how it ended would unblock a server
        # that waits for it, and deliveries after the drain would hide that it froze.
        stuck = self._stuck_verdict(status_before, status_after) if self.stuck else None

        server_cpu = (
            cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
        )
        wall = (end_ns - start_ns) / 1e9
        machine = MachineFigures(cpus=os.cpu_count() or 1)
        if busy_before is not None and busy_after is not None:
            machine.busy_percent = 100 * (busy_after - busy_before) / wall
        return self._result(
            reports,
            joined=joined,
            start_ns=start_ns,
            end_ns=end_ns,
            server=ServerFigures(
                spawned=self.server is not None,
                pid=self.pid,
                command=self.server.command if self.server else [],
                cpu_seconds=server_cpu,
                cpu_percent=None if server_cpu is None else 100 * server_cpu / wall,
                peak_rss_bytes=peak,
                rss_bytes=rss,
                alive=alive,
                status=status_after,
            ),
            machine=machine,
            idle=idle,
            stuck=stuck,
        )

    def _settle(self, slots: _Slots) -> None:
        """Wait until no setup line (join notice, announcement) arrived for 150 ms."""
        end = time.monotonic() + 10
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < end:
            seen = slots.total(_OTHER)
            if seen != last:
                last, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since > 0.15:
                return
            time.sleep(0.02)

    def _status(self) -> dict[str, Any] | None:
        if self.cfg.raw:
            return None
        try:
            return _chatctl_status(self.host, self.port)[0]
        except (OSError, ConnectionError, msgspec.DecodeError):
            return None

    def _run_and_drain(
        self, slots: _Slots, workers: list[mp.process.BaseProcess], start_ns: int, joined: int
    ) -> None:
        cfg = self.cfg
        receivers = joined if cfg.echo else joined - 1
        send_end = start_ns + int(cfg.seconds * 1e9)
        while time.monotonic_ns() < send_end:
            self._check_workers(slots, workers)
            self._progress("running", (time.monotonic_ns() - start_ns) / 1e9, slots)
            time.sleep(0.1)
        time.sleep(0.05)  # let the workers publish their final send counts
        hard_end = time.monotonic() + max(15.0, cfg.drain_timeout * 3)
        last, moved = -1, time.monotonic()
        while time.monotonic() < hard_end:
            expected = (slots.total(_SENT) - slots.total(_REFUSED)) * receivers
            delivered = slots.total(_DELIVERED)
            self._progress("draining", cfg.seconds, slots)
            if delivered >= expected:
                break
            if delivered != last:
                last, moved = delivered, time.monotonic()
            elif time.monotonic() - moved > cfg.drain_timeout:
                break
            time.sleep(0.02)
        time.sleep(0.05)  # deliveries counted after the last publish

    def _idle_phase(
        self,
        slots: _Slots,
        workers: list[mp.process.BaseProcess],
        start_ns: int,
        rss_before: int | None,
    ) -> IdleFigures:
        cfg = self.cfg
        assert cfg.clients is not None
        figures = IdleFigures(target=cfg.clients, server_rss_before_bytes=rss_before)
        end = start_ns + int((cfg.seconds + 15) * 1e9)
        while any(slots.get(p, _READY) < 2 for p in range(cfg.procs)):
            self._check_workers(slots, workers)
            if time.monotonic_ns() > end:
                break
            self._progress("connecting", (time.monotonic_ns() - start_ns) / 1e9, slots)
            time.sleep(0.05)
        figures.connected = slots.total(_CONNECTED)
        time.sleep(0.3)  # let the server finish what the last connections started
        if self.pid:
            figures.server_rss_after_bytes = _proc_memory(self.pid)[0]
            if rss_before is not None and figures.server_rss_after_bytes and figures.connected:
                grown = figures.server_rss_after_bytes - rss_before
                figures.server_rss_per_client_bytes = grown / figures.connected
        if cfg.raw:
            figures.confirmed = self._probe(slots, figures.connected)
        else:
            figures.confirmed = figures.connected
            timings = []
            for _ in range(3):
                with contextlib.suppress(OSError, ConnectionError, msgspec.DecodeError):
                    timings.append(_chatctl_status(self.host, self.port, timeout=10)[1])
            if timings:
                figures.status_ms = sorted(timings)[len(timings) // 2]
        return figures

    def _probe(self, slots: _Slots, connected: int) -> int:
        """Raw relays: one line from one more client must reach every idle client."""
        try:
            with socket.create_connection((self.host, self.port), timeout=5) as sock:
                time.sleep(0.2)
                sock.sendall(PROBE + b" are you there\n")
                end = time.monotonic() + 5
                while slots.total(_PROBED) < connected and time.monotonic() < end:
                    time.sleep(0.05)
                time.sleep(0.05)
        except OSError:
            return 0
        return slots.total(_PROBED)

    def _stuck_verdict(
        self, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> StuckFigures:
        assert self.stuck is not None
        state = self.stuck.state()
        evidence = [f"the stuck client's socket: {state}"]
        cut = state != "established"
        if before is not None and after is not None:
            b = before.get("leave_reasons", {}).get("slow_consumer", 0)
            a = after.get("leave_reasons", {}).get("slow_consumer", 0)
            evidence.append(f"server status: leave_reasons.slow_consumer {b} -> {a}")
            cut = cut or a > b
        if self.server is not None:
            lines = [
                line
                for line in self.server.log().splitlines()
                if self.stuck.name in line and " left " in line
            ]
            evidence.extend(f"server log: {line}" for line in lines[-1:])
        return StuckFigures(cut_off=cut, how=state, evidence=evidence)

    def _result(
        self,
        reports: list[dict[str, Any]],
        *,
        joined: int,
        start_ns: int,
        end_ns: int,
        server: ServerFigures,
        machine: MachineFigures,
        idle: IdleFigures | None,
        stuck: StuckFigures | None,
    ) -> BenchResult:
        cfg = self.cfg
        assert cfg.clients is not None
        assert cfg.senders is not None
        latencies = array("q")
        errors: Counter[str] = Counter()
        connect_errors: Counter[str] = Counter()
        left: dict[str, str] = {}
        for report in reports:
            latencies.frombytes(report["latencies"])
            errors.update(report["errors"])
            connect_errors.update(report["connect_errors"])
            for name, reason, _ in report["leaves"]:
                if name.startswith(f"bench{self.tag}-"):  # our own clients, not the stuck one
                    left[name] = reason
        disconnected = Counter(left.values())
        gen_cpu = [float(r["cpu"]) for r in reports]
        wall = (end_ns - start_ns) / 1e9
        generator = GeneratorFigures(
            procs=cfg.procs,
            cpu_seconds=sum(gen_cpu),
            cpu_percent=100 * sum(gen_cpu) / wall,
            max_proc_cpu_percent=100 * max(gen_cpu) / wall,
        )
        sent = sum(int(r["sent"]) for r in reports)
        refused = sum(int(r["refused"]) for r in reports)
        delivered = sum(int(r["delivered"]) for r in reports)
        receivers = joined if cfg.echo else joined - 1
        expected = (sent - refused) * receivers if cfg.scenario != "idle" else 0
        last_ns = max(int(r["last_ns"]) for r in reports)
        # At least the sending time: a room that froze early must not look fast.
        duration = max(cfg.seconds, (last_ns - start_ns) / 1e9)
        lost_clients = sum(int(r["disconnected"]) for r in reports)
        if lost_clients and not disconnected:
            disconnected["closed"] = lost_clients
        result = BenchResult(
            scenario=cfg.scenario,
            host=self.host,
            port=self.port,
            raw=cfg.raw,
            clients=cfg.clients,
            senders=cfg.senders,
            size=cfg.size,
            window=cfg.window,
            rate=cfg.rate if cfg.scenario == "rate" else None,
            seconds=cfg.seconds,
            server=server,
            generator=generator,
            machine=machine,
            clients_joined=joined,
            messages_sent=sent,
            messages_refused=refused,
            deliveries=delivered,
            deliveries_expected=expected,
            lost=max(0, expected - delivered),
            duration_seconds=duration,
            last_delivery_seconds=(last_ns - start_ns) / 1e9 if delivered else None,
            deliveries_per_second=delivered / duration,
            messages_per_second=sent / cfg.seconds,
            errors=dict(errors),
            disconnected=dict(disconnected),
            idle=idle,
            stuck=stuck,
        )
        if machine.busy_percent is not None:
            ours = generator.cpu_percent + (server.cpu_percent or 0)
            machine.other_percent = max(0.0, machine.busy_percent - ours)
        if server.cpu_seconds and cfg.scenario != "idle":
            result.deliveries_per_server_cpu_second = delivered / server.cpu_seconds
        if latencies:
            ordered = sorted(latencies)
            result.latency = Latency(
                p50_ms=_percentile(ordered, 0.50),
                p99_ms=_percentile(ordered, 0.99),
                max_ms=ordered[-1] / 1e6,
                samples=len(ordered),
            )
        if idle is not None:
            idle.connect_errors = dict(connect_errors)
            lasts = [int(r.get("idle_last_ns", 0)) for r in reports]
            if max(lasts):
                idle.seconds_to_connect = (max(lasts) - start_ns) / 1e9
        result.bottleneck = _bottleneck(result)
        result.notes = _notes(cfg, result, connect_errors)
        return result


# --------------------------------------------------------------------------- verdicts

#: Error codes and leave reasons that mean a policy, not speed, stopped something.
_LIMIT_WORDS = ("throttl", "full", "too_many", "limit", "rate", "busy", "slow")
_BUSY = 85.0


def _bottleneck(result: BenchResult) -> str:
    server = result.server.cpu_percent
    generator = result.generator.max_proc_cpu_percent
    busy = []
    if server is not None and server >= _BUSY:
        busy.append("server")
    if generator >= _BUSY:
        busy.append("generator")
    if busy:
        return " and ".join(busy)
    if server is None:
        return "generator not busy; server unknown"
    return "neither"


def _notes(cfg: BenchConfig, result: BenchResult, connect_errors: Counter[str]) -> list[str]:
    notes: list[str] = []
    capped = sorted(
        code for code in {*result.errors, *connect_errors} if any(w in code for w in _LIMIT_WORDS)
    )
    if result.messages_refused:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(result.errors.items()))
        notes.append(
            f"the server refused {result.messages_refused} of {result.messages_sent} messages "
            f"({codes}): a server policy, not its speed, shaped these figures"
        )
    if connect_errors:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(connect_errors.items()))
        what = "connections failed" if cfg.scenario == "idle" else "clients could not join"
        notes.append(f"{sum(connect_errors.values())} {what} ({codes})")
        if "EMFILE" in connect_errors or "ENFILE" in connect_errors:
            notes.append("the generator ran out of file descriptors: raise `ulimit -n`")
    if capped and (connect_errors or (result.idle and result.idle.connected < result.idle.target)):
        notes.append(f"a server limit ({', '.join(capped)}), not its speed, capped the clients")
    if result.disconnected:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(result.disconnected.items()))
        notes.append(f"the server disconnected bench clients during the run ({reasons})")
    last = result.last_delivery_seconds
    if result.lost and last is not None and last < 0.8 * cfg.seconds:
        notes.append(
            f"deliveries stopped {last:.1f} s into a {cfg.seconds:g} s run: the room froze"
            + (" (held up by the client that never reads)" if cfg.scenario == "stuck" else "")
        )
    if result.lost:
        notes.append(
            f"{result.lost} of {result.deliveries_expected} deliveries never arrived "
            f"within {cfg.drain_timeout:g} s of the last one"
        )
    server_cpu = result.server.cpu_percent
    calm = result.generator.max_proc_cpu_percent < 60 and (server_cpu is None or server_cpu < 60)
    if cfg.scenario in ("fanout", "stuck") and calm and result.senders and not result.lost:
        per_sender = result.messages_sent / result.senders / cfg.seconds
        if not cfg.spawns_server:
            notes.append(
                f"senders averaged {per_sender:,.0f} msg/s each while neither the generator "
                "nor the server was busy: something other than speed held them back, most "
                "likely the server's flood pacing (serve --rate/--burst) or a small --window"
            )
    p50 = result.latency.p50_ms
    if cfg.scenario == "rate" and not cfg.spawns_server and (p50 or 0) > 250:
        notes.append(
            "messages queued up behind the server's pacing (latency grows with the run): "
            "rate-limited, not slow"
        )
    if cfg.scenario == "idle" and result.idle is not None:
        idle = result.idle
        if idle.connected < idle.target and not connect_errors:
            notes.append(
                f"{idle.connected} of {idle.target} clients connected within {cfg.seconds:g} s"
            )
        if idle.confirmed < idle.connected:
            notes.append(
                f"only {idle.confirmed} of {idle.connected} connected clients were served "
                "(answered, or received the probe line)"
            )
    other = result.machine.other_percent
    if other is not None and other > 15 and result.server.cpu_percent is not None:
        notes.append(
            f"other programs used {other:.0f} % of a CPU during the run "
            f"({result.machine.cpus} CPUs): the figures are noisy"
        )
    if result.server.alive is False:
        notes.append("the server process is gone")
    if result.stuck is not None and not result.stuck.cut_off:
        notes.append("the stuck client was not cut off")
    return notes
