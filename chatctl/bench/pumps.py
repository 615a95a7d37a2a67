"""How a worker sends: window-limited flooding, or a fixed total rate, into each room.

``pump_window``: per room, at most ``window`` messages in flight per sender, where a
message leaves the window once the slowest client in that room, in any worker, has it; so
no receiver falls behind without bound and the rate is whatever the server and the
generator together sustain. ``pump_rate``: open loop, this worker's share of the total rate,
round the (sender, room) pairs in turn, for latency at a gentle load.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatctl.bench.worker import _Worker


async def pump_window(w: _Worker, end_ns: int) -> None:
    window = w.plan.window
    rooms = list(w.senders.items())
    turn = 0
    while rooms:
        now = time.monotonic_ns()
        if now >= end_ns:
            return
        w.publish()
        turn += 1
        anyone = False
        for room, senders in rooms:
            free = len(senders) * window - (
                w.sent_room[room] - w.refused_room[room] - w.acked(room)
            )
            live = [s for s in senders if not s.lost]
            anyone = anyone or bool(live)
            if free <= 0 or not live:
                continue
            each = max(1, min(window, -(-free // len(live))))
            first = turn % len(live)
            for sender in live[first:] + live[:first]:
                count = min(each, free)
                sender.send_messages(count, now, room)
                free -= count
                if free <= 0:
                    break
        if not anyone:
            return
        await w.nap(min(0.002, (end_ns - now) / 1e9))
    await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))


async def pump_rate(w: _Worker, start_ns: int, end_ns: int) -> None:
    plan = w.plan
    assert plan.rate is not None
    pairs = [(s, room) for room, senders in w.senders.items() for s in senders]
    # Round the rooms first: consecutive messages go to different rooms.
    pairs.sort(key=lambda pair: (pair[0].sends_to.index(pair[1]), pair[1], pair[0].number))
    interval = 1e9 * plan.procs / plan.rate  # this worker's share of the rate
    offset = interval * plan.index / plan.procs  # interleave the workers
    total = int((end_ns - start_ns - offset) / interval) + 1
    done = 0
    while done < total and pairs:
        now = time.monotonic_ns()
        if now >= end_ns:
            break
        due = min(total, int((now - start_ns - offset) / interval) + 1)
        while done < due:
            sender, room = pairs[done % len(pairs)]
            sender.send_messages(1, now, room)
            done += 1
        next_ns = start_ns + offset + done * interval
        await asyncio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
    await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))
