"""The idle run of a worker: connect as many clients as the time allows, each greeted
(a ``status`` request, or a ``hello`` with ``--join``; over IRC, registered, and in
``#lobby`` with ``--join``), then hold them while the parent reads the server's memory and
asks for ``status``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from chatctl.bench.clients import _CONNECTING, _CONNECTING_RAW, _Idle, _why
from chatctl.bench.irc import _IrcIdle
from chatctl.bench.shared import _CONNECTED, _FINISH, _GO, _READY, _START
from chatctl.bench.system import _cpu_seconds
from chatctl.protocol import Hello, StatusRequest, encode

if TYPE_CHECKING:
    from chatctl.bench.worker import _Worker


async def run_idle(w: _Worker) -> dict[str, Any]:
    plan, slots = w.plan, w.slots
    loop = asyncio.get_running_loop()
    slots.set(plan.index, _READY, 1)  # nothing to set up
    await w.until_state(_GO)
    start_ns = int(slots.shared[_START])
    end_ns = start_ns + int(plan.seconds * 1e9)
    cpu0 = _cpu_seconds()
    gate = asyncio.Semaphore(_CONNECTING_RAW if plan.gentle else 2 * _CONNECTING)
    idle: list[_Idle] = []
    confirmed = 0
    last_ns = 0

    async def one(n: int) -> None:
        nonlocal confirmed, last_ns
        async with gate:
            left = (end_ns - time.monotonic_ns()) / 1e9
            if left <= 0:
                return
            name = f"idle{plan.tag}-{plan.first + n}"
            irc = plan.first + n in plan.irc
            client = _IrcIdle(w, name, plan.join) if irc else _Idle(w)
            port = plan.irc_port if irc and plan.irc_port else plan.port_of(plan.first + n)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: client, plan.host, port), left
                )
                if isinstance(client, _IrcIdle):
                    assert client.transport is not None
                    client.transport.write(client.greeting)  # registered (and joined): in
                    await asyncio.wait_for(client.answer, max(0.001, left))
                    if client.refused is not None:
                        w.errors[client.refused] += 1
                        client.transport.abort()
                        return
                elif not plan.raw:
                    assert client.transport is not None
                    # Without --join: a status request, which (unlike a ping) counts as
                    # a greeting, so the server's hello timeout leaves the client be.
                    frame = Hello(version=plan.version, name=name) if plan.join else StatusRequest()
                    client.transport.write(encode(frame))
                    first = await asyncio.wait_for(client.answer, max(0.001, left))
                    if b'"type":"error"' in first:
                        code = msgspec.json.decode(first).get("code", "error")
                        w.errors[str(code)] += 1
                        client.transport.abort()
                        return
            except (OSError, TimeoutError, msgspec.DecodeError) as exc:
                w.connect_errors[_why(exc)] += 1
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
    await w.until_state(_FINISH)
    cpu = _cpu_seconds() - cpu0
    for client in idle:
        if client.transport is not None:
            client.transport.abort()
    report = w.report(cpu)
    report["idle_connected"] = len([c for c in idle if not c.lost])
    report["idle_confirmed"] = confirmed
    report["idle_probed"] = w.probed
    report["idle_last_ns"] = last_ns
    return report
