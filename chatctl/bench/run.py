"""The parent's side of one run: start the server (or use one; or, for a cluster run, a
redis-server and the servers that share it), learn its protocol version (and, for IRC
clients, whether it echoes), start the generator processes, pace the phases through the
shared counters, then hand the reports to ``figures``. The idle phase and the stuck client's
verdict are ``phases``.
"""

from __future__ import annotations

import multiprocessing as mp
import secrets
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from chatctl.bench.backplane import SpawnedRedis
from chatctl.bench.config import BenchConfig, BenchError
from chatctl.bench.figures import assemble
from chatctl.bench.irc import irc_clients
from chatctl.bench.layout import homes
from chatctl.bench.phases import idle_phase, stuck_verdict
from chatctl.bench.results import (
    BenchProgress,
    BenchResult,
    ProgressCallback,
    ServerFigures,
)
from chatctl.bench.shared import (
    _CONNECTED,
    _DELIVERED,
    _FINISH,
    _GO,
    _OTHER,
    _READY,
    _REFUSED,
    _SENT,
    _START,
    _STATE,
    _Plan,
    _Slots,
)
from chatctl.bench.target import (
    _chatctl_status,
    _irc_echo,
    _protocol_version,
    _SpawnedServer,
    _StuckClient,
)
from chatctl.bench.watch import Watch
from chatctl.bench.worker import _worker_entry


def _ignore(progress: BenchProgress) -> None:
    """The default progress callback."""


def run_bench(cfg: BenchConfig, on_progress: ProgressCallback = _ignore) -> BenchResult:
    """Run one scenario and return its figures. Raises BenchError if it cannot run."""
    cfg = cfg.resolved()
    on_progress(BenchProgress("starting", 0.0, cfg.seconds))
    servers: list[_SpawnedServer] = []
    redis: SpawnedRedis | None = None
    workers: list[mp.process.BaseProcess] = []
    run: _Run | None = None
    pid: int | None
    try:
        if cfg.spawns_server:
            if cfg.clustered:
                redis = SpawnedRedis(aof=cfg.redis_aof)
            for _ in range(cfg.cluster):
                servers.append(_SpawnedServer(cfg, redis.url if redis else None))
            host, port, pid = "127.0.0.1", servers[0].port, servers[0].pid
        else:
            assert cfg.host is not None
            assert cfg.port is not None
            host, port, pid = cfg.host, cfg.port, cfg.server_pid
        run = _Run(cfg, host, port, pid, servers, on_progress, redis)
        return run.execute(workers)
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
        if run is not None and run.stuck is not None:
            run.stuck.close()
        _stop(servers)
        if redis is not None:  # after the servers: their last leaves go to it
            redis.stop()
            redis.cleanup()


def _stop(servers: list[_SpawnedServer]) -> None:
    """Stop the servers bench started, together (each may take its grace period)."""
    for server in servers:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
    for server in servers:
        server.stop()
        server.cleanup()


class _Run:
    """The parent's side of one run."""

    def __init__(
        self,
        cfg: BenchConfig,
        host: str,
        port: int,
        pid: int | None,
        servers: list[_SpawnedServer],
        on_progress: ProgressCallback,
        redis: SpawnedRedis | None = None,
    ) -> None:
        self.cfg = cfg
        self.host, self.port, self.pid = host, port, pid
        #: The servers bench started (one, or a cluster's); the first is ``server``.
        self.servers = servers
        self.server = servers[0] if servers else None
        self.redis = redis
        #: The server processes whose CPU and memory are read (all of a cluster's).
        self.pids = [s.pid for s in servers] if servers else ([pid] if pid else [])
        self.watch = Watch(self.pids, redis)
        self.on_progress = on_progress
        self.stuck: _StuckClient | None = None
        self.tag = secrets.token_hex(2)
        self.layout = cfg.layout(self.tag)
        #: Spoken with the server; None for a raw line relay or an IRC server.
        self.version: int | None = None
        assert cfg.clients is not None
        #: The clients that speak IRC, and where: the door of the server bench started, or
        #: the IRC server at --port.
        self.irc = irc_clients(self.layout, cfg.clients, cfg.share)
        server = self.server
        self.irc_port = server.irc_port if server is not None else (port if cfg.irc else None)
        #: Where ``status`` is asked (None: a line relay, an IRC server).
        self.status_port = None if cfg.raw or cfg.irc_server else port
        #: The server sends a message back to its sender (for IRC: if it has echo-message).
        self.echo = not cfg.raw
        #: A cluster run: each server's port, and each client's server (round-robin).
        self.ports = tuple(s.port for s in servers) if cfg.clustered else ()
        self.homes = homes(self.layout, cfg.clients, len(self.ports)) if self.ports else ()

    def _plans(self) -> list[_Plan]:
        cfg = self.cfg
        assert cfg.clients is not None
        assert cfg.senders is not None
        plans, first = [], 0
        for index in range(cfg.procs):
            clients = cfg.clients // cfg.procs + (index < cfg.clients % cfg.procs)
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
                    first=first,
                    size=cfg.size,
                    window=cfg.window,
                    rate=cfg.rate,
                    seconds=cfg.seconds,
                    tag=self.tag,
                    layout=self.layout,
                    version=self.version or 1,
                    irc=self.irc,
                    irc_port=self.irc_port,
                    echo=self.echo,
                    gentle=cfg.raw or cfg.irc_server,
                    ports=self.ports,
                    homes=self.homes,
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
        self._learn()
        ctx = mp.get_context("spawn")
        rooms = self.layout.rooms
        shared = ctx.Array("q", _Slots.size(cfg.procs, rooms), lock=False)
        slots = _Slots(shared, cfg.procs, rooms)
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
            name = f"stuck{self.tag}"
            irc, port = cfg.share >= 1, self.irc_port or self.port
            self.stuck = _StuckClient(
                self.host, port if irc else self.port, cfg.raw, name, self.version or 1, irc
            )
            self._settle(slots)
        status_before = self._status()
        rss_before, _ = self.watch.memory()
        before = self.watch.read()

        # go
        start_ns = time.monotonic_ns() + 20_000_000
        slots.shared[_START] = start_ns
        slots.shared[_STATE] = _GO
        idle = None
        if cfg.scenario == "idle":
            idle = idle_phase(self, slots, workers, start_ns, rss_before)
        else:
            self._run_and_drain(slots, workers, start_ns, joined)
        end_ns = time.monotonic_ns()
        after = self.watch.read()
        rss, peak = self.watch.memory()
        alive = self.watch.alive()
        status_after = self._status()
        states = self.watch.states()
        statuses = [self._status(s.port) for s in self.servers] if self.ports else []

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
        stuck = stuck_verdict(self, status_before, status_after) if self.stuck else None

        wall = (end_ns - start_ns) / 1e9
        spent = self.watch.spent(before, after, wall)
        server_cpu = spent.server
        servers = []
        if self.ports:
            counts = [
                sum(r["clients_by_server"][i] for r in reports) for i in range(len(self.ports))
            ]
            servers = Watch.cluster_figures(self.servers, spent, wall, counts, states, statuses)
        return assemble(
            cfg,
            reports,
            host=self.host,
            port=self.port,
            irc_port=self.irc_port,
            irc_clients=len(self.irc),
            echo=self.echo,
            tag=self.tag,
            version=self.version,
            joined=joined,
            start_ns=start_ns,
            end_ns=end_ns,
            server=ServerFigures(
                spawned=self.server is not None,
                pid=self.pid,
                command=self.server.command if self.server else [],
                history=self.server is not None and self.server.history_path is not None,
                cpu_seconds=server_cpu,
                cpu_percent=None if server_cpu is None else 100 * server_cpu / wall,
                peak_rss_bytes=peak,
                rss_bytes=rss,
                alive=alive,
                status=status_after,
                event_loop=self.server.event_loop if self.server else None,
            ),
            machine=spent.machine,
            idle=idle,
            stuck=stuck,
            servers=servers,
            redis_url=self.redis.url if self.redis else None,
            redis_aof=self.redis is not None and self.redis.aof,
            redis_cpu=spent.redis,
            redis_info_cpu=spent.redis_info,
        )

    def memory(self) -> tuple[int | None, int | None]:
        return self.watch.memory()

    def _learn(self) -> None:
        """What the server speaks: the protocol version for chatctl clients; for IRC
        clients, whether it sends a sender's messages back (echo-message)."""
        cfg = self.cfg
        assert cfg.clients is not None
        if not cfg.raw and len(self.irc) < cfg.clients:
            self.version = self._speak()
        if not self.irc:
            return
        assert self.irc_port is not None
        try:
            self.echo = _irc_echo(self.host, self.irc_port)
        except OSError as exc:
            raise BenchError(f"cannot reach {self.host}:{self.irc_port}: {exc}") from None
        if not self.echo and len(self.irc) < cfg.clients:
            raise BenchError(
                "the IRC door offers no echo-message: with chatctl clients beside IRC ones, "
                "a run needs every sender to get its messages back"
            )

    def _speak(self) -> int:
        """Our protocol version, or 1 for a server of version 1 (single-room scenarios)."""
        try:
            version = _protocol_version(self.host, self.port, f"probe{self.tag}")
        except OSError as exc:
            raise BenchError(f"cannot reach {self.host}:{self.port}: {exc}") from None
        if version < 2 and self.cfg.scenario == "rooms":
            raise BenchError(
                f"{self.host}:{self.port} speaks protocol version 1 (one room): "
                "`bench rooms` needs version 2"
            )
        return version

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

    def _status(self, port: int | None = None) -> dict[str, Any] | None:
        port = port or self.status_port
        if port is None:
            return None
        try:
            return _chatctl_status(self.host, port)[0]
        except (OSError, ConnectionError, msgspec.DecodeError):
            return None

    def _run_and_drain(
        self, slots: _Slots, workers: list[mp.process.BaseProcess], start_ns: int, joined: int
    ) -> None:
        cfg = self.cfg
        receivers = joined if self.echo else joined - 1
        if self.layout.named:  # every member of every room, if every client got in
            receivers = self.layout.members - (0 if self.echo else 1)
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
