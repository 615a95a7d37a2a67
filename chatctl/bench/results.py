"""What a bench run gives back: the figures of a finished run, and progress while it runs.

Plain dataclasses, so ``--json`` is ``msgspec.to_builtins`` and ``chatctl.ui.bench`` draws
them without knowing how they were measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec


@dataclass
class Latency:
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    samples: int = 0


@dataclass
class ServerFigures:
    """A server's figures; in a cluster run, ``BenchResult.server`` is all the servers
    together (CPU summed, memory summed, alive if every one is) and ``servers`` each one."""

    spawned: bool
    pid: int | None = None
    #: Its chatctl port (in ``servers``; the top-level ``port`` is the first server's).
    port: int | None = None
    #: Bench clients connected to it (in ``servers``: round-robin over the cluster).
    clients: int | None = None
    command: list[str] = field(default_factory=list)
    cpu_seconds: float | None = None
    cpu_percent: float | None = None
    peak_rss_bytes: int | None = None
    rss_bytes: int | None = None
    alive: bool | None = None
    #: The server bench started kept history (``--history``, on a temporary file).
    history: bool = False
    #: ``uvloop`` or ``asyncio``, as the server bench started logged it.
    event_loop: str | None = None
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
    #: Total messages per second the senders kept to; None: window-limited flooding.
    rate: float | None
    seconds: float
    server: ServerFigures
    generator: GeneratorFigures
    machine: MachineFigures
    #: Clients that spoke IRC (``--irc``: all; ``--irc-share``: that fraction), and where:
    #: the door of the server bench started, or the IRC server at ``port``.
    irc_clients: int = 0
    irc_port: int | None = None
    #: The server sent each message back to its sender too (chatctl; IRC with echo-message),
    #: so every member of a room, sender included, is a receiver.
    echo: bool = True
    #: ``rooms``: rooms, members in each, rooms each client is in (else 1, clients, 1).
    rooms: int = 1
    members: int = 0
    rooms_per_client: int = 1
    #: The protocol version bench spoke: 2, or 1 with a server that only speaks 1 (None: raw).
    protocol: int | None = None
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
    #: Servers bench started, sharing one Redis backplane (1: a single server; with
    #: ``backplane`` a single server on one).
    cluster: int = 1
    #: The Redis URL the servers shared (a redis-server bench started), None without one.
    backplane: str | None = None
    #: The redis-server kept an append-only file (``appendonly yes``); False: nothing.
    redis_aof: bool = False
    #: Each server of a cluster run (with a backplane), in order; empty otherwise.
    servers: list[ServerFigures] = field(default_factory=list)
    #: CPU the redis-server used over the run (``/proc/<pid>/stat``, as the servers'), and
    #: in percent of one CPU; Redis's own account (``INFO cpu``: used_cpu_sys + used_cpu_user).
    redis_cpu_seconds: float | None = None
    redis_cpu_percent: float | None = None
    redis_info_cpu_seconds: float | None = None
    #: Deliveries per CPU-second of the servers and Redis together.
    deliveries_per_cpu_second_with_redis: float | None = None
    #: Latency of the samples whose sender was on another server than the receiver
    #: (``cross_server``) and on the same one (``same_server``); cluster runs of 2 or more.
    latency_cross_server: Latency | None = None
    latency_same_server: Latency | None = None
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
