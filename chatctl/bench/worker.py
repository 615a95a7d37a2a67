"""A generator process: its clients, its counters, what it shares with the parent, and the
entry point ``run`` starts it with. The pumps are ``pumps``, the idle run ``idle``.

It knows the parent only through ``shared``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from chatctl import eventloop
from chatctl.bench.clients import _CONNECTING, _CONNECTING_RAW, _Client, _why
from chatctl.bench.idle import run_idle
from chatctl.bench.irc import _IrcClient
from chatctl.bench.pumps import pump_rate, pump_window
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
    NOBODY,
    _Plan,
    _Slots,
)
from chatctl.bench.system import _cpu_seconds
from chatctl.oslimits import raise_open_file_limit

_MAX_SAMPLES = 1_000_000


class _Worker:
    """One generator process: its clients, its pump, its counters."""

    def __init__(self, plan: _Plan, slots: _Slots) -> None:
        self.plan = plan
        self.slots = slots
        rooms = plan.layout.rooms
        self.clients: list[_Client] = []
        #: Room -> this worker's clients that send into it.
        self.senders: dict[int, list[_Client]] = {}
        #: Room -> this worker's clients in it, with the room's place in their ``rooms``.
        self.members: dict[int, list[tuple[_Client, int]]] = {}
        self.sent = 0
        self.refused = 0
        self.sent_room = [0] * rooms
        self.refused_room = [0] * rooms
        self.delivered = 0
        self.other = 0
        self.probed = 0
        self.idle_lost = 0
        self.last_ns = 0
        self.latencies = array("q")
        #: A cluster run of several servers: the same samples, split by whether the
        #: sender was on the receiver's server (``local``) or on another (``cross``).
        self.split = len(plan.ports) > 1
        self.cross = array("q")
        self.local = array("q")
        self.sampling = False
        self.errors: Counter[str] = Counter()
        self.leaves: Counter[tuple[str, str]] = Counter()
        self.disconnected = 0
        self.connect_errors: Counter[str] = Counter()
        self._waiter: asyncio.Future[None] | None = None

    # called from the protocols

    def sample(self, buf: bytearray, at: int, now: int, home: int = 0) -> None:
        """A latency sample from the message at ``at``, received by a client of server
        ``home`` (``mark client seq time``: the client says which server it sent to)."""
        fields = bytes(buf[at : at + 80]).split(b" ", 4)
        try:
            latency = now - int(fields[3])
        except (IndexError, ValueError):
            return  # a line a relay cut in two (ncat prefixes each read it relays)
        if 0 <= latency < 600_000_000_000:
            self.latencies.append(latency)
            if self.split:
                try:
                    local = self.plan.home(int(fields[1])) == home
                except (IndexError, ValueError):
                    local = False
                (self.local if local else self.cross).append(latency)
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

    def refuse(self, sends_to: list[int], room: object) -> None:
        """The server refused a say of a client sending into ``sends_to``."""
        name = self.plan.layout.name
        found = [r for r in sends_to if name(r) == room]
        self.refused += 1
        self.refused_room[found[0] if found else sends_to[0]] += 1
        self.wake()

    # shared counters

    def publish(self) -> None:
        s, i, procs = self.slots, self.plan.index, self.plan.procs
        s.set(i, _SENT, self.sent)
        s.set(i, _REFUSED, self.refused)
        s.set(i, _DELIVERED, self.delivered)
        s.set(i, _OTHER, self.other)
        s.set(i, _PROBED, self.probed)
        shared, echo = s.shared, self.plan.echo
        for room, members in self.members.items():
            live = [(c, j) for c, j in members if not c.lost]
            for p in range(procs):
                if not live:
                    low = NOBODY
                elif p == i and not echo:  # my own lines do not come back: count them had
                    low = min(c.rx[j * procs + p] + c.sent[j] for c, j in live)
                else:
                    low = min(c.rx[j * procs + p] for c, j in live)
                shared[s.progress_at(i, p, room)] = low

    def acked(self, room: int) -> int:
        """My messages into ``room`` that every live client of every worker there has."""
        s, i = self.slots, self.plan.index
        return min(int(s.shared[s.progress_at(q, i, room)]) for q in range(self.plan.procs))

    def state(self) -> int:
        return int(self.slots.shared[_STATE])

    async def _publisher(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(0.02)

    async def until_state(self, state: int) -> None:
        # The parent writes shared memory: there is nothing to await, so poll.
        while self.state() < state:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    async def nap(self, seconds: float) -> None:
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
        s = self.slots
        for room in range(plan.layout.rooms):  # rooms I have nobody in hold nobody back
            for p in range(plan.procs):
                s.shared[s.progress_at(plan.index, p, room)] = NOBODY
        publisher = asyncio.create_task(self._publisher())
        try:
            if plan.scenario == "idle":
                return await run_idle(self)
            return await self._run_room()
        finally:
            publisher.cancel()

    async def _connect_all(self) -> None:
        plan = self.plan
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(_CONNECTING_RAW if plan.gentle else _CONNECTING)

        async def one(n: int) -> None:
            number = plan.first + n
            irc = number in plan.irc
            client = (_IrcClient if irc else _Client)(self, number)
            port = plan.irc_port if irc and plan.irc_port else plan.port_of(number)
            async with gate:
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: client, plan.host, port), 10
                    )
                    await asyncio.wait_for(client.ready, 10)
                except (OSError, TimeoutError) as exc:
                    self.connect_errors[_why(exc)] += 1
                    if client.transport is not None:
                        client.transport.abort()
                    return
            self.clients.append(client)
            self.slots.set(plan.index, _CONNECTED, len(self.clients))

        await asyncio.gather(*(one(n) for n in range(plan.clients)))
        self.clients.sort(key=lambda c: c.number)
        for client in self.clients:
            for j, room in enumerate(client.rooms):
                self.members.setdefault(room, []).append((client, j))
            for room in client.sends_to:
                self.senders.setdefault(room, []).append(client)

    async def _run_room(self) -> dict[str, Any]:
        plan, slots = self.plan, self.slots
        await self._connect_all()
        self.publish()
        slots.set(plan.index, _CONNECTED, len(self.clients))
        slots.set(plan.index, _READY, 1)
        await self.until_state(_GO)
        start_ns = int(slots.shared[_START])
        cpu0 = _cpu_seconds()
        self.sampling = True
        end_ns = start_ns + int(plan.seconds * 1e9)
        await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        if plan.rate is not None:
            await pump_rate(self, start_ns, end_ns)
        else:
            await pump_window(self, end_ns)
        self.publish()
        await self.until_state(_FINISH)
        cpu = _cpu_seconds() - cpu0
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()
        return self.report(cpu)

    def clients_by_server(self) -> list[int]:
        """My connected clients on each server (one count outside a cluster run)."""
        counts = [0] * max(1, len(self.plan.ports))
        for client in self.clients:
            counts[self.plan.home(client.number)] += 1
        return counts

    def report(self, cpu: float) -> dict[str, Any]:
        rooms = self.plan.layout.rooms
        return {
            "index": self.plan.index,
            "clients": len(self.clients),
            "sent": self.sent,
            "refused": self.refused,
            "sent_by_room": self.sent_room,
            "refused_by_room": self.refused_room,
            "joined_by_room": [len(self.members.get(r, ())) for r in range(rooms)],
            "delivered": self.delivered,
            "last_ns": self.last_ns,
            "latencies": self.latencies.tobytes(),
            "cross_latencies": self.cross.tobytes(),
            "local_latencies": self.local.tobytes(),
            "clients_by_server": self.clients_by_server(),
            "errors": dict(self.errors),
            "connect_errors": dict(self.connect_errors),
            "leaves": [[name, reason, n] for (name, reason), n in self.leaves.items()],
            "disconnected": self.disconnected,
            "cpu": cpu,
        }


def _worker_entry(plan: _Plan, shared: Any, conn: Connection) -> None:
    """Entry point of a worker process: spawned, so it must stay importable by module path."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    slots = _Slots(shared, plan.procs, plan.layout.rooms)
    try:
        report = eventloop.run(_Worker(plan, slots).run())
    except BaseException as exc:
        report = {"failed": f"{type(exc).__name__}: {exc}"}
        slots.set(plan.index, _READY, -1)
    conn.send(report)
    conn.close()
