"""The server's periodic work: connection timers, and retention of old history.

Both run as tasks of the listener, beside the hub; each pass is short, so the loop
stays free for the conversation.
"""

from __future__ import annotations

import asyncio
import time

from chatctl.server.hub import Hub


async def sweep(hub: Hub) -> None:
    """Check every connection's timers, periodically, until cancelled."""
    interval = hub.config.sweep_interval
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        for session in list(hub.connections):
            session.check_timers(now)
        hub.admission.prune(now)


async def retain(hub: Hub, interval: float = 60.0, batch: int = 1000) -> None:
    """Delete what is past the retention, in small batches between others' work."""
    config = hub.config
    while hub.history is not None:
        before = None if config.keep_seconds is None else time.time() - config.keep_seconds
        deleted = hub.history.prune(before, config.keep_messages, batch)
        if before is not None and hub.claims is not None:
            hub.claims.expire(before, set(hub.members))
        await asyncio.sleep(0 if deleted >= batch else interval)  # more, after the others
