"""What the parent and the worker processes share: each worker's plan, and the counters
both sides read and write in shared memory while the run goes on.

Both ``generator`` (the workers) and ``run`` (the parent) import this; it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One int64 array shared by the parent and the workers, without a lock: each
# slot has one writer. Layout: [state, start_ns] then one block per worker.
_STATE, _START = 0, 1
_SETUP, _GO, _FINISH = 0, 1, 2
_READY, _CONNECTED, _SENT, _REFUSED, _DELIVERED, _OTHER, _PROBED = range(7)
_FIXED = 7  # then ``procs`` progress slots: messages of worker p that all my clients have


class _Slots:
    def __init__(self, shared: Any, procs: int) -> None:
        self.shared = shared
        self.procs = procs
        self.block = _FIXED + procs

    @staticmethod
    def size(procs: int) -> int:
        return 2 + procs * (_FIXED + procs)

    def at(self, proc: int, slot: int) -> int:
        return 2 + proc * self.block + slot

    def get(self, proc: int, slot: int) -> int:
        return int(self.shared[self.at(proc, slot)])

    def set(self, proc: int, slot: int, value: int) -> None:
        self.shared[self.at(proc, slot)] = value

    def total(self, slot: int) -> int:
        return sum(self.get(p, slot) for p in range(self.procs))

    def progress_at(self, reader: int, sender: int) -> int:
        return 2 + reader * self.block + _FIXED + sender


@dataclass(frozen=True)
class _Plan:
    """One worker's share of the run."""

    index: int
    procs: int
    scenario: str
    host: str
    port: int
    raw: bool
    join: bool
    clients: int
    senders: int
    #: Global number of this worker's first client, for names and sender ids.
    first: int
    size: int
    window: int
    rate: float
    seconds: float
    tag: str
