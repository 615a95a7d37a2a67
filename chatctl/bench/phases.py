"""The parent's phases that only some scenarios have: the idle run (memory per client,
``status`` with everyone connected, the probe line of a raw relay) and the verdict on the
stuck client. ``run`` calls them with its ``_Run``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import socket
import time
from typing import TYPE_CHECKING, Any

import msgspec

from chatctl.bench.clients import PROBE
from chatctl.bench.results import IdleFigures, StuckFigures
from chatctl.bench.shared import _CONNECTED, _PROBED, _READY, _Slots
from chatctl.bench.target import _chatctl_status

if TYPE_CHECKING:
    from chatctl.bench.run import _Run


def idle_phase(
    run: _Run,
    slots: _Slots,
    workers: list[mp.process.BaseProcess],
    start_ns: int,
    rss_before: int | None,
) -> IdleFigures:
    cfg = run.cfg
    assert cfg.clients is not None
    figures = IdleFigures(target=cfg.clients, server_rss_before_bytes=rss_before)
    end = start_ns + int((cfg.seconds + 15) * 1e9)
    while any(slots.get(p, _READY) < 2 for p in range(cfg.procs)):
        run._check_workers(slots, workers)
        if time.monotonic_ns() > end:
            break
        run._progress("connecting", (time.monotonic_ns() - start_ns) / 1e9, slots)
        time.sleep(0.05)
    figures.connected = slots.total(_CONNECTED)
    time.sleep(0.3)  # let the server finish what the last connections started
    if run.pid:
        figures.server_rss_after_bytes = run.memory()[0]  # a cluster's servers together
        if rss_before is not None and figures.server_rss_after_bytes and figures.connected:
            grown = figures.server_rss_after_bytes - rss_before
            figures.server_rss_per_client_bytes = grown / figures.connected
    if cfg.raw:
        figures.confirmed = _probe(run, slots, figures.connected)
        return figures
    figures.confirmed = figures.connected  # each was answered (status, welcome, 001/366)
    if run.status_port is not None:
        timings = []
        for _ in range(3):
            with contextlib.suppress(OSError, ConnectionError, msgspec.DecodeError):
                timings.append(_chatctl_status(run.host, run.status_port, timeout=10)[1])
        if timings:
            figures.status_ms = sorted(timings)[len(timings) // 2]
    return figures


def _probe(run: _Run, slots: _Slots, connected: int) -> int:
    """Raw relays: one line from one more client must reach every idle client."""
    try:
        with socket.create_connection((run.host, run.port), timeout=5) as sock:
            time.sleep(0.2)
            sock.sendall(PROBE + b" are you there\n")
            end = time.monotonic() + 5
            while slots.total(_PROBED) < connected and time.monotonic() < end:
                time.sleep(0.05)
            time.sleep(0.05)
    except OSError:
        return 0
    return slots.total(_PROBED)


def stuck_verdict(
    run: _Run, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> StuckFigures:
    assert run.stuck is not None
    state = run.stuck.state()
    evidence = [f"the stuck client's socket: {state}"]
    cut = state != "established"
    if before is not None and after is not None:
        b = before.get("leave_reasons", {}).get("slow_consumer", 0)
        a = after.get("leave_reasons", {}).get("slow_consumer", 0)
        evidence.append(f"server status: leave_reasons.slow_consumer {b} -> {a}")
        cut = cut or a > b
    if run.server is not None:
        lines = [
            line
            for line in run.server.log().splitlines()
            if run.stuck.name in line and " left " in line
        ]
        evidence.extend(f"server log: {line}" for line in lines[-1:])
    return StuckFigures(cut_off=cut, how=state, evidence=evidence)
