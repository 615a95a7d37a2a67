"""``serve --metrics``: the hub's own counters as Prometheus metrics, read at scrape time.

Nothing is counted per message for this: the collector reads what the server counts
anyway (``Room.messages``, ``Room.deliveries``, ``Hub.leave_reasons``, the history's
commit times, ...) when Prometheus asks, so a scrape every 15 s costs the message path
nothing. The HTTP server is prometheus_client's own (``start_http_server``: a thread,
and a thread per request), so parsing, gzip and a slow scraper stay off the event loop;
the hub's state is the loop's, though (its dicts change under a thread that iterates
them, the transports' buffers are the loop's), so each scrape asks the loop for one
``snapshot`` with ``call_soon_threadsafe``, and the wait for it is the loop's lag.

Imported only with ``--metrics``: prometheus_client is not loaded otherwise.
docs/operations.md lists every metric.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from math import inf
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from chatctl import __version__
from chatctl.server.latency import Latency

if TYPE_CHECKING:
    from chatctl.server.hub import Hub

#: How long a scrape waits for the loop: longer means the loop is stuck, and the scrape
#: says so (``chatctl_event_loop_lag_seconds``) rather than hang until Prometheus gives up.
SNAPSHOT_TIMEOUT = 2.0


@dataclass(frozen=True)
class RoomCounts:
    name: str
    members: int
    messages: int
    deliveries: int


@dataclass(frozen=True)
class Snapshot:
    """What a scrape reports, copied on the loop in one go (O(rooms + connections))."""

    started_at: float
    connections: int
    users: int
    rooms: list[RoomCounts]
    relayed: int
    leaves: dict[str, int]
    queued_bytes: int
    largest_queue: int
    #: With history: messages in the file, whether writing failed, commit times.
    history: tuple[int, bool, Latency] | None
    #: With a backplane: its lag (None: not known yet) and reconnections (None: not kept).
    backplane: tuple[float | None, int | None] | None


def snapshot(hub: Hub) -> Snapshot:
    """The hub's counters now; on the loop's thread only."""
    rooms = [
        RoomCounts(r.name, len(r.members), r.messages, r.deliveries) for r in hub.rooms.values()
    ]
    queues = [session.bytes_queued for session in hub.connections]
    history = hub.history
    kept = None
    if history is not None:
        kept = (history.messages, history.error is not None, history.write_latency.copy())
    return Snapshot(
        started_at=hub.started_at,
        connections=len(hub.connections),
        users=len(hub.members),
        rooms=rooms,
        relayed=hub.messages_relayed,
        leaves={str(reason): n for reason, n in hub.leave_reasons.items()},
        queued_bytes=sum(queues),
        largest_queue=max(queues, default=0),
        history=kept,
        backplane=_backplane(hub),
    )


def _backplane(hub: Hub) -> tuple[float | None, int | None] | None:
    """The backplane's ``lag_seconds`` and ``reconnects``, if the hub has one (``hub.backplane``,
    its cluster's link; read with getattr, so that a hub without it, or a link without either
    attribute, leaves them out rather than failing the scrape)."""
    backplane = getattr(hub, "backplane", None)
    if backplane is None:
        return None
    lag = getattr(backplane, "lag_seconds", None)
    reconnects = getattr(backplane, "reconnects", None)
    return (
        float(lag) if isinstance(lag, int | float) else None,
        int(reconnects) if isinstance(reconnects, int) else None,
    )


class HubCollector:
    """A prometheus_client collector: each ``collect`` (a scrape, on an HTTP thread) takes
    one snapshot on the loop and turns it into metric families there, off the loop."""

    def __init__(self, hub: Hub, loop: asyncio.AbstractEventLoop, server: str = "") -> None:
        self.hub = hub
        self.loop = loop
        self._loop_thread = threading.get_ident()
        #: The chat address(es), for ``chatctl_info{server}``: set once the server listens.
        self.server = server

    def _take(self) -> tuple[Snapshot | None, float]:
        """The snapshot and how long the loop took to get to it (None: it did not, in time)."""
        asked = time.perf_counter()
        if threading.get_ident() == self._loop_thread:
            return snapshot(self.hub), 0.0
        result: concurrent.futures.Future[tuple[Snapshot, float]] = concurrent.futures.Future()

        def on_loop() -> None:
            lag = time.perf_counter() - asked
            try:
                result.set_result((snapshot(self.hub), lag))
            except BaseException as exc:  # a bug: the scrape shows it (HTTP 500)
                result.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(on_loop)
            return result.result(SNAPSHOT_TIMEOUT)
        except RuntimeError:  # the loop is closed: the server is stopping
            return None, 0.0
        except TimeoutError:
            return None, time.perf_counter() - asked

    def collect(self) -> Iterator[Metric]:
        taken, lag = self._take()
        yield GaugeMetricFamily(
            "chatctl_event_loop_lag_seconds",
            "How long this scrape waited for the event loop to read the counters.",
            value=lag,
        )
        if taken is not None:
            yield from families(taken, self.server)


def families(s: Snapshot, server: str = "") -> Iterator[Metric]:
    """The metric families of one snapshot (docs/operations.md lists them)."""
    yield InfoMetricFamily(
        "chatctl",
        "This server: its version and chat address.",
        {"version": __version__, "server": server},
    )
    yield GaugeMetricFamily(
        "chatctl_start_time_seconds", "When the server started (Unix time).", s.started_at
    )
    yield GaugeMetricFamily(
        "chatctl_connections", "Open connections, joined or not.", s.connections
    )
    yield GaugeMetricFamily(
        "chatctl_users", "People joined (each once, in any number of rooms).", s.users
    )
    yield GaugeMetricFamily("chatctl_rooms", "Rooms that exist (#lobby always).", len(s.rooms))
    members = GaugeMetricFamily("chatctl_room_members", "People in each room.", labels=["room"])
    received = CounterMetricFamily(
        "chatctl_messages_received", "Messages said in each room.", labels=["room"]
    )
    delivered = CounterMetricFamily(
        "chatctl_deliveries",
        "Room frames (messages, joins, leaves, ...) handed to members: frames x members.",
        labels=["room"],
    )
    for room in s.rooms:
        members.add_metric([room.name], room.members)
        received.add_metric([room.name], room.messages)
        delivered.add_metric([room.name], room.deliveries)
    yield from (members, received, delivered)
    yield CounterMetricFamily(
        "chatctl_messages_relayed", "Room messages relayed, all rooms, since start.", s.relayed
    )
    yield GaugeMetricFamily(
        "chatctl_queued_bytes", "Bytes waiting to be sent, all clients.", s.queued_bytes
    )
    yield GaugeMetricFamily(
        "chatctl_largest_queue_bytes",
        "Bytes waiting for the client with the most (cut off as slow_consumer past --max-queue).",
        s.largest_queue,
    )
    leaves = CounterMetricFamily(
        "chatctl_leaves", "Connections ended or refused, by reason.", labels=["reason"]
    )
    for reason, n in sorted(s.leaves.items()):
        leaves.add_metric([reason], n)
    yield leaves
    if s.history is not None:
        yield from _history(*s.history)
    if s.backplane is not None:
        yield from _backplane_families(*s.backplane)


def _history(messages: int, failed: bool, latency: Latency) -> Iterator[Metric]:
    yield GaugeMetricFamily("chatctl_history_messages", "Messages in the history file.", messages)
    yield GaugeMetricFamily(
        "chatctl_history_failed",
        "1 once writing the history failed (the server goes on).",
        int(failed),
    )
    buckets = [("+Inf" if bound == inf else repr(bound), n) for bound, n in latency.cumulative()]
    yield HistogramMetricFamily(
        "chatctl_history_write_seconds",
        "Time each history commit took (one per loop iteration with something to keep).",
        buckets=buckets,
        sum_value=latency.total,
    )


def _backplane_families(lag: float | None, reconnects: int | None) -> Iterator[Metric]:
    if lag is not None:
        yield GaugeMetricFamily(
            "chatctl_backplane_lag_seconds", "How far this server is behind the backplane.", lag
        )
    if reconnects is not None:
        yield CounterMetricFamily(
            "chatctl_backplane_reconnects",
            "Times the backplane connection was made again.",
            reconnects,
        )


class MetricsServer:
    """``/metrics`` on ``host:port``, for as long as the chat server runs."""

    def __init__(self, hub: Hub, host: str, port: int) -> None:
        """Listens at once (OSError if it cannot: the caller says so); on the loop's thread."""
        self.collector = HubCollector(hub, asyncio.get_running_loop())
        registry = CollectorRegistry()
        registry.register(self.collector)
        # The process's CPU, memory and file descriptors, and the interpreter's, as any
        # Python exporter has them (the default registry's, on our own registry).
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(standard)
        self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        address = self._httpd.server_address
        self.host, self.port = str(address[0]), int(address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop listening (blocks up to the server's poll interval, half a second)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(1.0)
