"""Issue 11's fault run: two ``chatctl serve --backplane`` servers on one Redis that keeps
its append-only file, numbered messages at a bounded rate, then one redis-server restart
and one server killed with SIGKILL, and a count of what every client saw.

    .venv/bin/python benchmarks/cluster_faults.py                 # 20 clients, 100 msg/s, 20 s
    .venv/bin/python benchmarks/cluster_faults.py --repeat 3 --json faults.json

How it runs (every address on loopback, every loop bounded in count and time):

* A redis-server started here (``appendonly yes``, ``appendfsync everysec``, no snapshots)
  on a free port, in a temporary folder, and two servers started as ``chatctl bench``
  starts its own (``serve --rate 0 ... --backplane URL``), each with a history file of its
  own (``--history``: every server keeps every room's history, so a client that comes back
  to the other server can ask it for what it missed).
* ``--clients`` raw protocol clients (JSON lines, as ``tests/wire.py`` speaks them), client
  k on server k % 2, all in ``#faults``. Each sends ``say`` frames with an ``id``
  (``m<k>-<n>``) at its share of ``--rate`` for ``--seconds``.
* At ``--restart-at`` seconds redis-server gets SIGTERM (it syncs its append-only file and
  exits) and is started again on the same port and folder. At ``--kill-at`` seconds server 1
  gets SIGKILL. Its clients reconnect to server 0 (``hello`` with the name and the secret of
  its ``claim``, and ``replace``: the owner taking the name back from a connection left
  behind; with ``--no-replace``, without it, so while the dead server still holds the name
  they get ``name_taken`` and try again every ``--retry`` seconds) and ask ``history``
  for what they missed: every message after the last ``seq`` they had up to the ``seq``
  of the ``room`` frame, paging back with ``before``.
* Sending stops at ``--seconds``; the run waits until every client is back and nothing new
  arrived for ``--quiet`` seconds, then one client pages through server 0's whole history.

What it counts, per message id sent:

* **acknowledged**: its echo (a live ``message`` frame with its ``id``) came back to its
  sender. For each acknowledged message and each client that is still there at the end
  (all of them, unless one could not come back): **lost** if that client never saw it,
  live or in the history it asked for; **duplicated** once for each extra time it saw it.
  A ``seq`` seen twice, and one id under two ``seq``s (published twice), are counted too.
* **not acknowledged**: no echo came back (its sender was on the killed server, or its
  say was in flight then). Not lost: reported apart, with how many clients saw it anyway
  (the dead server had published it) and whether the sender found it in history later.
* Messages not sent because their sender was reconnecting at the time are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatctl.bench.backplane import SpawnedRedis
from chatctl.bench.config import BenchConfig, BenchError
from chatctl.bench.target import _SpawnedServer

ROOM = "#faults"
HOST = "127.0.0.1"
HISTORY_PAGE = 500
#: A history page of 500 messages is one line of ~70 KiB: past asyncio's 64 KiB default.
LINE_LIMIT = 16 << 20


@dataclass
class Reconnect:
    lost_at: float
    server: int = -1
    welcomed_at: float | None = None
    attempts: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    #: Messages the history pages gave (after the last seq seen before the loss).
    recovered: int = 0


class FaultClient:
    """One raw protocol client: sends numbered messages, records every message it sees."""

    def __init__(self, run: FaultRun, k: int) -> None:
        self.run = run
        self.k = k
        self.name = f"f{run.tag}-{k}"
        self.home = k % len(run.ports)
        self.secret: str | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.welcomed = False
        #: seq -> the ids seen under it (live and from history), in order.
        self.seen: dict[int, list[str | None]] = defaultdict(list)
        #: id -> how many times seen (live and from history), and under which seqs.
        self.times: Counter[str] = Counter()
        self.seqs_of: dict[str, set[int]] = defaultdict(set)
        self.live_last = 0
        self.order_errors = 0
        #: The highest seq seen, live or from history (where a history request starts).
        self.high = 0
        self.sent: dict[str, float] = {}
        self.acked: set[str] = set()
        self.from_history: set[str] = set()
        self.skipped = 0
        self.errors: Counter[str] = Counter()
        #: ``leave`` and ``part`` frames of ``#faults``, by reason (and whether the one who
        #: left was back meanwhile: a leave for someone who is there is a wrong one).
        self.leaves: Counter[str] = Counter()
        self.reconnects: list[Reconnect] = []
        self.gave_up = False
        self.last_frame = time.monotonic()
        self._history_floor = 0
        self._history_n = 0
        self.audit: list[dict[str, Any]] | None = None

    # the connection

    async def connect_loop(self) -> None:
        """Connect (again, to the next server, after a loss) until the run says stop."""
        run = self.run
        while not run.stopping:
            port = run.ports[self.home]
            try:
                opening = asyncio.open_connection(HOST, port, limit=LINE_LIMIT)
                reader, writer = await asyncio.wait_for(opening, 3)
            except (OSError, TimeoutError):
                self._attempt_failed("refused")
                self.home = (self.home + 1) % len(run.ports)
                await asyncio.sleep(run.retry)
                continue
            self.writer = writer
            hello: dict[str, Any] = {"type": "hello", "version": 2, "name": self.name}
            hello["rooms"] = [ROOM]
            if self.secret:
                hello["secret"] = self.secret
                if run.args.replace:  # the name's owner, back: take it from the dead server
                    hello["replace"] = True
            await self._send(hello)
            again = await self._read(reader)
            self.welcomed = False
            self.writer = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if run.stopping:
                return
            if again == "retry":  # name_taken: the dead server still holds the name
                await asyncio.sleep(run.retry)
                continue
            # the connection was lost (the server went away): to the next server
            if not self.reconnects or self.reconnects[-1].welcomed_at is not None:
                self.reconnects.append(Reconnect(lost_at=time.monotonic()))
            else:
                self._attempt_failed("closed")
            self.home = (self.home + 1) % len(run.ports)
            await asyncio.sleep(run.retry)

    def _attempt_failed(self, code: str) -> None:
        if self.reconnects and self.reconnects[-1].welcomed_at is None:
            self.reconnects[-1].attempts += 1
            self.reconnects[-1].codes[code] += 1

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.writer is None:
            return
        self.writer.write(json.dumps(frame, separators=(",", ":")).encode() + b"\n")
        with contextlib.suppress(OSError):
            await self.writer.drain()

    async def _read(self, reader: asyncio.StreamReader) -> str:
        """Frames until the connection ends: "lost", or "retry" (refused at hello)."""
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError):
                return "lost"
            if not line:
                return "lost"
            self.last_frame = time.monotonic()
            frame = json.loads(line)
            kind = frame.get("type")
            if kind == "welcome":
                self.welcomed = True
                if self.reconnects and self.reconnects[-1].welcomed_at is None:
                    self.reconnects[-1].welcomed_at = time.monotonic()
                    self.reconnects[-1].server = self.home
            elif kind == "claim":
                self.secret = frame["secret"]
            elif kind == "room" and frame.get("room") == ROOM:
                if self.high:  # back after a loss: ask for what came meanwhile
                    self._history_floor = self.high
                    await self._ask_history(int(frame["seq"]) + 1)
            elif kind == "message" and frame.get("room") == ROOM:
                self._record(frame, live=not frame.get("history"))
            elif kind in ("leave", "part") and frame.get("room") == ROOM:
                self.leaves[f"{kind} {frame.get('reason')}"] += 1
            elif kind == "history_reply" and frame.get("room") == ROOM:
                await self._history_page(frame)
            elif kind == "error":
                code = str(frame.get("code"))
                self.errors[code] += 1
                if not self.welcomed:
                    self._attempt_failed(code)
                    return "retry"
            elif kind == "ping":
                await self._send({"type": "pong"})

    async def _ask_history(self, before: int) -> None:
        self._history_n += 1
        ask = {"type": "history", "room": ROOM, "before": before, "limit": HISTORY_PAGE}
        await self._send({**ask, "id": f"h{self.k}-{self._history_n}"})

    async def _history_page(self, frame: dict[str, Any]) -> None:
        if self.audit is not None:  # the final audit of the whole history
            self.audit[:0] = frame["messages"]
            messages = frame["messages"]
            if frame.get("more") and messages:
                await self._ask_history(int(messages[0]["seq"]))
            else:
                self.run.audited.set()
            return
        floor = self._history_floor
        messages = [m for m in frame["messages"] if int(m["seq"]) > floor]
        for message in messages:
            self._record(message, live=False)
        if self.reconnects:
            self.reconnects[-1].recovered += len(messages)
        oldest = int(frame["messages"][0]["seq"]) if frame["messages"] else 0
        if frame.get("more") and oldest > floor + 1:
            await self._ask_history(oldest)

    def _record(self, frame: dict[str, Any], live: bool) -> None:
        seq = int(frame["seq"])
        mid = frame.get("id")
        self.seen[seq].append(mid)
        self.high = max(self.high, seq)
        if mid is not None:
            self.times[mid] += 1
            self.seqs_of[mid].add(seq)
        if live:
            if seq <= self.live_last:
                self.order_errors += 1
            self.live_last = seq
            if mid in self.sent and frame.get("name") == self.name:
                self.acked.add(mid)
        elif mid in self.sent and mid not in self.acked:
            self.from_history.add(mid)

    # sending

    async def send_loop(self, start: float, end: float) -> None:
        run = self.run
        interval = len(run.clients) / run.rate
        due = start + interval * self.k / len(run.clients)
        n = 0
        while due < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
            if not self.welcomed or self.writer is None:
                self.skipped += 1
                continue
            n += 1
            mid = f"m{self.k}-{n}"
            self.sent[mid] = time.monotonic()
            await self._send(
                {"type": "say", "room": ROOM, "text": f"fault {self.k} {n}", "id": mid}
            )

    async def audit_history(self) -> list[dict[str, Any]]:
        """Page back through the whole history of the room on this client's server."""
        self.audit = []
        self.run.audited.clear()
        await self._ask_history(2**62)
        await asyncio.wait_for(self.run.audited.wait(), 30)
        return self.audit


class FaultRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rate = args.rate
        self.retry = args.retry
        self.tag = secrets.token_hex(2)
        self.stopping = False
        self.ports: list[int] = []
        self.clients: list[FaultClient] = []
        self.audited = asyncio.Event()
        self.events: list[tuple[float, str]] = []

    async def go(self, redis: SpawnedRedis, servers: list[_SpawnedServer]) -> dict[str, Any]:
        args = self.args
        self.ports = [s.port for s in servers]
        self.clients = [FaultClient(self, k) for k in range(args.clients)]
        tasks = [asyncio.create_task(c.connect_loop()) for c in self.clients]
        end = time.monotonic() + 30
        while not all(c.welcomed for c in self.clients):
            if time.monotonic() > end:
                raise BenchError("the clients could not join within 30 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the joins settle
        start = time.monotonic()
        stop = start + args.seconds
        senders = [asyncio.create_task(c.send_loop(start, stop)) for c in self.clients]
        await self._faults(start, redis, servers)
        await asyncio.gather(*senders)
        self._event(start, "sending stopped")
        drained = await self._drain(start)
        self._event(start, "drained" if drained else "drain gave up")
        audit = await self.clients[0].audit_history()
        self.stopping = True
        for client in self.clients:
            if client.writer is not None:
                client.writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.count(audit, start)

    def _event(self, start: float, what: str) -> None:
        self.events.append((time.monotonic() - start, what))
        print(f"  {time.monotonic() - start:6.2f} s  {what}", file=sys.stderr, flush=True)

    async def _faults(
        self, start: float, redis: SpawnedRedis, servers: list[_SpawnedServer]
    ) -> None:
        args = self.args
        await asyncio.sleep(max(0.0, start + args.restart_at - time.monotonic()))
        self._event(start, f"redis-server: SIGTERM (pid {redis.pid})")
        await asyncio.to_thread(redis.stop)
        self._event(start, "redis-server: stopped; starting it again, same port and folder")
        if not await asyncio.to_thread(redis.start):
            raise BenchError(f"redis-server did not start again: {redis.log_tail()}")
        self._event(start, f"redis-server: answering again (pid {redis.pid})")
        await asyncio.sleep(max(0.0, start + args.kill_at - time.monotonic()))
        victim = servers[1]
        os.kill(victim.pid, signal.SIGKILL)
        self._event(start, f"server 1 (port {victim.port}, pid {victim.pid}): SIGKILL")

    async def _drain(self, start: float) -> bool:
        end = time.monotonic() + self.args.drain_limit
        while time.monotonic() < end:
            back = all(c.welcomed for c in self.clients)
            last = max(c.last_frame for c in self.clients)
            if back and time.monotonic() - last > self.args.quiet:
                return True
            await asyncio.sleep(0.1)
        return False

    def count(self, audit: list[dict[str, Any]], start: float) -> dict[str, Any]:
        clients = self.clients
        survivors = [c for c in clients if c.welcomed]
        sent = {mid: c for c in clients for mid in c.sent}
        acked = {mid for c in clients for mid in c.acked}
        lost = Counter[str]()
        duplicated = 0
        for mid in acked:
            for c in survivors:
                times = c.times.get(mid, 0)
                if times == 0:
                    lost[mid] += 1
                duplicated += max(0, times - 1)
        seq_twice = sum(len(ids) - 1 for c in survivors for ids in c.seen.values() if len(ids) > 1)
        two_seqs = {mid for c in survivors for mid, seqs in c.seqs_of.items() if len(seqs) > 1}
        unacked = set(sent) - acked
        reached = Counter[str]()
        for mid in unacked:
            n = sum(1 for c in survivors if c.times.get(mid))
            reached["all" if n == len(survivors) else "some" if n else "none"] += 1
        history_ids = Counter(m.get("id") for m in audit if m.get("id"))
        reconnects = [r for c in clients for r in c.reconnects]
        took = [r.welcomed_at - r.lost_at for r in reconnects if r.welcomed_at is not None]
        codes = Counter[str]()
        for c in clients:
            codes.update(c.errors)
        leaves = Counter[str]()
        for c in clients:
            leaves.update(c.leaves)
        attempts = Counter[str]()
        for r in reconnects:
            attempts.update(r.codes)
        return {
            "clients": len(clients),
            "survivors": len(survivors),
            "sent": len(sent),
            "skipped_while_reconnecting": sum(c.skipped for c in clients),
            "acknowledged": len(acked),
            "lost": sum(lost.values()),
            "lost_messages": len(lost),
            "lost_examples": sorted(lost)[:10],
            "duplicated": duplicated,
            "seq_seen_twice": seq_twice,
            "published_twice": len(two_seqs),
            "order_errors": sum(c.order_errors for c in survivors),
            "not_acknowledged": len(unacked),
            "not_acknowledged_reached": dict(reached),
            "not_acknowledged_found_by_sender_in_history": len(
                {mid for c in clients for mid in c.from_history}
            ),
            "history_on_server_0": {
                "messages": len(audit),
                "acknowledged_missing": len(acked - set(history_ids)),
                "ids_twice": sum(1 for n in history_ids.values() if n > 1),
            },
            "reconnected": len(took),
            "reconnect_seconds": {
                "min": round(min(took), 2) if took else None,
                "max": round(max(took), 2) if took else None,
            },
            "reconnect_refusals": dict(attempts),
            "recovered_from_history": sum(r.recovered for r in reconnects),
            "error_frames": dict(codes),
            "leave_frames": dict(leaves),
            "events": [[round(t, 2), what] for t, what in self.events],
        }


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = BenchConfig(scenario="rate", clients=args.clients, history=True).resolved()
    redis = SpawnedRedis(aof=True)
    servers: list[_SpawnedServer] = []
    try:
        servers = [_SpawnedServer(cfg, redis.url) for _ in range(2)]
        result = asyncio.run(FaultRun(args).go(redis, servers))
        result["redis"] = redis.command
        result["server_0_backplane_log"] = [
            line for line in servers[0].log().splitlines() if "backplane" in line.lower()
        ][-6:]
        return result
    finally:
        for server in servers:
            server.stop()
            server.cleanup()
        redis.stop()
        redis.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s, all together")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--restart-at", type=float, default=6.0)
    parser.add_argument("--kill-at", type=float, default=12.0)
    parser.add_argument("--retry", type=float, default=0.5, help="seconds between tries")
    parser.add_argument(
        "--no-replace",
        dest="replace",
        action="store_false",
        help="come back without `replace` (wait until the dead server lets go of the name)",
    )
    parser.add_argument("--quiet", type=float, default=3.0, help="drained after this quiet")
    parser.add_argument("--drain-limit", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every run's counts here")
    args = parser.parse_args()
    if not 2 <= args.clients <= 200 or not 0 < args.rate <= 1000 or not 0 < args.seconds <= 120:
        sys.exit("bounded: --clients 2-200, --rate up to 1000, --seconds up to 120")
    if not 0 < args.restart_at < args.kill_at < args.seconds:
        sys.exit("--restart-at < --kill-at < --seconds")
    runs = []
    for n in range(1, args.repeat + 1):
        print(f"run {n}", file=sys.stderr, flush=True)
        try:
            runs.append(one_run(args))
        except BenchError as exc:
            sys.exit(f"cluster_faults: {exc}")
        print(json.dumps(runs[-1], indent=1), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")
    sys.stdout.write(table(runs, args))


def table(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    how = "with `replace`" if args.replace else "without `replace`"
    lines = [
        f"{args.clients} clients, {args.rate:g} msg/s for {args.seconds:g} s; redis-server "
        f"restarted at {args.restart_at:g} s, server 1 killed (-9) at {args.kill_at:g} s, "
        f"its clients back on server 0 {how}",
        "",
        "| run | sent | acknowledged | lost | duplicated | seq twice | published twice "
        "| order errors | not acknowledged (reached all / some / none) | skipped while "
        "reconnecting | reconnected, in s | acked missing from history |",
        "| --- |" + " ---: |" * 11,
    ]
    for n, r in enumerate(runs, 1):
        reach = r["not_acknowledged_reached"]
        rs = r["reconnect_seconds"]
        lines.append(
            f"| {n} | {r['sent']} | {r['acknowledged']} | {r['lost']} | {r['duplicated']} "
            f"| {r['seq_seen_twice']} | {r['published_twice']} | {r['order_errors']} "
            f"| {r['not_acknowledged']} ({reach.get('all', 0)} / {reach.get('some', 0)} / "
            f"{reach.get('none', 0)}) | {r['skipped_while_reconnecting']} "
            f"| {r['reconnected']}, {rs['min']}-{rs['max']} "
            f"| {r['history_on_server_0']['acknowledged_missing']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
