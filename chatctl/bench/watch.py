"""What a run reads of the processes it measures, before and after sending: the CPU of the
server (or of each of a cluster's servers), Redis's beside it, the machine's, and memory.
Apart from ``run`` so that the pacing of a run and the reading of figures are one job each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chatctl.bench.backplane import SpawnedRedis
from chatctl.bench.results import MachineFigures, ServerFigures
from chatctl.bench.system import _alive, _machine_busy, _proc_cpu, _proc_memory
from chatctl.bench.target import _SpawnedServer


@dataclass(frozen=True)
class Reading:
    """CPU seconds so far: each server's, Redis's (``/proc``, ``INFO cpu``), the machine's."""

    cpu: list[float | None]
    redis: tuple[float | None, float | None] | None
    busy: float | None


@dataclass(frozen=True)
class State:
    rss: int | None
    peak: int | None
    alive: bool


@dataclass(frozen=True)
class Spent:
    """What a run cost, between two readings."""

    #: Each server's CPU seconds, and theirs together (None if any is unknown).
    each: list[float | None]
    server: float | None
    redis: float | None
    redis_info: float | None
    machine: MachineFigures


class Watch:
    """The server processes a run measures (all of a cluster's) and its Redis, if any."""

    def __init__(self, pids: list[int], redis: SpawnedRedis | None) -> None:
        self.pids = pids
        self.redis = redis

    def read(self) -> Reading:
        redis = None
        if self.redis is not None:
            redis = (_proc_cpu(self.redis.pid), self.redis.info_cpu())
        return Reading([_proc_cpu(pid) for pid in self.pids], redis, _machine_busy())

    def memory(self) -> tuple[int | None, int | None]:
        """(resident, peak) of the server, or of a cluster's servers together (summed)."""
        if not self.pids:
            return None, None
        found = [_proc_memory(pid) for pid in self.pids]
        rss = [r for r, _ in found]
        peak = [p for _, p in found]
        return (
            None if None in rss else sum(r or 0 for r in rss),
            None if None in peak else sum(p or 0 for p in peak),
        )

    def alive(self) -> bool | None:
        return all(_alive(pid) for pid in self.pids) if self.pids else None

    def states(self) -> list[State]:
        """Each server's memory and liveness, now (read when the sending ends)."""
        return [State(*_proc_memory(pid), _alive(pid)) for pid in self.pids]

    @staticmethod
    def spent(before: Reading, after: Reading, wall: float) -> Spent:
        each = [
            None if a is None or b is None else a - b
            for a, b in zip(after.cpu, before.cpu, strict=True)
        ]
        server = None if not each or None in each else sum(x or 0.0 for x in each)
        redis = redis_info = None
        if before.redis is not None and after.redis is not None:
            redis = _less(after.redis[0], before.redis[0])
            redis_info = _less(after.redis[1], before.redis[1])
        machine = MachineFigures(cpus=os.cpu_count() or 1)
        if before.busy is not None and after.busy is not None:
            machine.busy_percent = 100 * (after.busy - before.busy) / wall
        return Spent(each, server, redis, redis_info, machine)

    @staticmethod
    def cluster_figures(
        servers: list[_SpawnedServer],
        spent: Spent,
        wall: float,
        counts: list[int],
        states: list[State],
        statuses: list[dict[str, Any] | None],
    ) -> list[ServerFigures]:
        """Each of a cluster's servers: its clients (``counts``), CPU, memory, status."""
        figures = []
        for i, s in enumerate(servers):
            cpu, state = spent.each[i], states[i]
            figures.append(
                ServerFigures(
                    spawned=True,
                    pid=s.pid,
                    port=s.port,
                    clients=counts[i],
                    command=s.command,
                    history=s.history_path is not None,
                    cpu_seconds=cpu,
                    cpu_percent=None if cpu is None else 100 * cpu / wall,
                    peak_rss_bytes=state.peak,
                    rss_bytes=state.rss,
                    alive=state.alive,
                    status=statuses[i],
                    event_loop=s.event_loop,
                )
            )
        return figures


def _less(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before
