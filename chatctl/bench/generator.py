"""A generator process: its asyncio clients (one protocol each, no streams), its pumps and
counters, and the entry point ``run`` starts it with.

Receivers count marks and newlines per read instead of parsing lines (see the package
docstring); this is the hot path. It knows the parent only through ``shared``.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any, cast

import msgspec

from chatctl import eventloop
from chatctl.bench.shared import (
    _CONNECTED,
    _DELIVERED,
    _FINISH,
    _GO,
    _OTHER,
    _PROBED,
    _READY,
    _REFUSED,
    _SENT,
    _START,
    _STATE,
    _Plan,
    _Slots,
)
from chatctl.bench.system import _cpu_seconds
from chatctl.oslimits import raise_open_file_limit
from chatctl.protocol import PROTOCOL_VERSION, Hello, Pong, Say, StatusRequest, encode

#: Every message text starts with ``~chatctl-bench~<proc>#``; nothing else a server sends
#: contains the mark. Counting it is most of a receiver's work, and ``bytes.count`` skips
#: ahead by up to the pattern's length: this 15-byte mark is counted 2.8x faster than ``#B``.
MARK = b"~chatctl-bench~"
#: The line a raw-mode idle run broadcasts to check that every idle client is really served.
PROBE = b"#PROBE"
_READ_BUFFER = 64 * 1024
_MAX_SAMPLES = 1_000_000
#: Connections being opened at once. ncat listens with a backlog of 10: more at once overflow
#: its accept queue and the kernel leaves clients connected on one side only for seconds.
_CONNECTING = 64
_CONNECTING_RAW = 8


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
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        if self.w.plan.raw:
            self.joined = True
            self.ready.set_result(None)
        else:
            self.transport.write(encode(Hello(version=PROTOCOL_VERSION, name=self.name)))

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
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

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
        raise_open_file_limit(plan.clients + 256)
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
    """Entry point of a worker process: spawned, so it must stay importable by module path."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        report = eventloop.run(_Worker(plan, _Slots(shared, plan.procs)).run())
    except BaseException as exc:
        report = {"failed": f"{type(exc).__name__}: {exc}"}
        _Slots(shared, plan.procs).set(plan.index, _READY, -1)
    conn.send(report)
    conn.close()
