"""The figures of a finished run, from the workers' reports and the parent's readings:
deliveries expected and counted, rates, latency percentiles, who was disconnected.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

from chatctl.bench.config import BenchConfig
from chatctl.bench.results import (
    BenchResult,
    GeneratorFigures,
    IdleFigures,
    Latency,
    MachineFigures,
    ServerFigures,
    StuckFigures,
)
from chatctl.bench.verdicts import _bottleneck, _notes


def _percentile(ordered: list[int], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index] / 1e6


def _latency(samples: array[int]) -> Latency:
    ordered = sorted(samples)
    return Latency(
        p50_ms=_percentile(ordered, 0.50),
        p99_ms=_percentile(ordered, 0.99),
        max_ms=ordered[-1] / 1e6,
        samples=len(ordered),
    )


def expected_deliveries(cfg: BenchConfig, reports: list[dict[str, Any]], echo: bool) -> int:
    """Messages the server accepted into each room, times the clients of ours in it (less
    the sender, for a server that does not echo: a line relay, IRC without echo-message)."""
    if cfg.scenario == "idle":
        return 0
    total = 0
    for room in range(len(reports[0]["sent_by_room"])):
        accepted = sum(r["sent_by_room"][room] - r["refused_by_room"][room] for r in reports)
        joined = sum(r["joined_by_room"][room] for r in reports)
        total += accepted * (joined if echo else max(0, joined - 1))
    return total


def assemble(
    cfg: BenchConfig,
    reports: list[dict[str, Any]],
    *,
    host: str,
    port: int,
    irc_port: int | None,
    irc_clients: int,
    echo: bool,
    tag: str,
    version: int | None,
    joined: int,
    start_ns: int,
    end_ns: int,
    server: ServerFigures,
    machine: MachineFigures,
    idle: IdleFigures | None,
    stuck: StuckFigures | None,
    servers: list[ServerFigures] | None = None,
    redis_url: str | None = None,
    redis_aof: bool = False,
    redis_cpu: float | None = None,
    redis_info_cpu: float | None = None,
) -> BenchResult:
    """The result of a run, with its bottleneck and its notes."""
    assert cfg.clients is not None
    assert cfg.senders is not None
    latencies = array("q")
    cross, local = array("q"), array("q")
    errors: Counter[str] = Counter()
    connect_errors: Counter[str] = Counter()
    left: dict[str, str] = {}
    for report in reports:
        latencies.frombytes(report["latencies"])
        cross.frombytes(report.get("cross_latencies", b""))
        local.frombytes(report.get("local_latencies", b""))
        errors.update(report["errors"])
        connect_errors.update(report["connect_errors"])
        for name, reason, _ in report["leaves"]:
            if name.startswith(f"bench{tag}-"):  # our own clients, not the stuck one
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
    expected = expected_deliveries(cfg, reports, echo)
    last_ns = max(int(r["last_ns"]) for r in reports)
    # At least the sending time: a room that froze early must not look fast.
    duration = max(cfg.seconds, (last_ns - start_ns) / 1e9)
    lost_clients = sum(int(r["disconnected"]) for r in reports)
    if lost_clients and not disconnected:
        disconnected["closed"] = lost_clients
    result = BenchResult(
        scenario=cfg.scenario,
        host=host,
        port=port,
        raw=cfg.raw,
        irc_port=irc_port,
        irc_clients=irc_clients,
        echo=echo,
        clients=cfg.clients,
        senders=cfg.senders,
        size=cfg.size,
        window=cfg.window,
        rate=cfg.rate,
        rooms=cfg.rooms or 1,
        members=cfg.members or cfg.clients,
        rooms_per_client=cfg.rooms_per_client,
        protocol=version,
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
        cluster=cfg.cluster,
        backplane=redis_url,
        redis_aof=redis_aof,
        servers=servers or [],
        redis_cpu_seconds=redis_cpu,
        redis_cpu_percent=None if redis_cpu is None else 100 * redis_cpu / wall,
        redis_info_cpu_seconds=redis_info_cpu,
    )
    if machine.busy_percent is not None:
        ours = generator.cpu_percent + (server.cpu_percent or 0)
        ours += result.redis_cpu_percent or 0
        machine.other_percent = max(0.0, machine.busy_percent - ours)
    if server.cpu_seconds and cfg.scenario != "idle":
        result.deliveries_per_server_cpu_second = delivered / server.cpu_seconds
        if redis_cpu is not None:
            both = server.cpu_seconds + redis_cpu
            result.deliveries_per_cpu_second_with_redis = delivered / both
    if latencies:
        result.latency = _latency(latencies)
    if cross:
        result.latency_cross_server = _latency(cross)
    if local:
        result.latency_same_server = _latency(local)
    if idle is not None:
        idle.connect_errors = dict(connect_errors)
        lasts = [int(r.get("idle_last_ns", 0)) for r in reports]
        if max(lasts):
            idle.seconds_to_connect = (max(lasts) - start_ns) / 1e9
    result.bottleneck = _bottleneck(result)
    result.notes = _notes(cfg, result, connect_errors)
    return result
