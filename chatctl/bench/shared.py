"""What the parent and the worker processes share: each worker's plan, and the counters
both sides read and write in shared memory while the run goes on.

Both the workers and ``run`` (the parent) import this; it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatctl.bench.layout import Layout

# One int64 array shared by the parent and the workers, without a lock: each
# slot has one writer. Layout: [state, start_ns] then one block per worker.
_STATE, _START = 0, 1
_SETUP, _GO, _FINISH = 0, 1, 2
_READY, _CONNECTED, _SENT, _REFUSED, _DELIVERED, _OTHER, _PROBED = range(7)
#: Then ``rooms * procs`` progress slots: of the messages worker p sent into room r, how many
#: every one of my clients in room r has (``NOBODY`` when I have no client there).
_FIXED = 7
NOBODY = 2**62


class _Slots:
    def __init__(self, shared: Any, procs: int, rooms: int = 1) -> None:
        self.shared = shared
        self.procs = procs
        self.rooms = rooms
        self.block = _FIXED + rooms * procs

    @staticmethod
    def size(procs: int, rooms: int = 1) -> int:
        return 2 + procs * (_FIXED + rooms * procs)

    def at(self, proc: int, slot: int) -> int:
        return 2 + proc * self.block + slot

    def get(self, proc: int, slot: int) -> int:
        return int(self.shared[self.at(proc, slot)])

    def set(self, proc: int, slot: int, value: int) -> None:
        self.shared[self.at(proc, slot)] = value

    def total(self, slot: int) -> int:
        return sum(self.get(p, slot) for p in range(self.procs))

    def progress_at(self, reader: int, sender: int, room: int = 0) -> int:
        return 2 + reader * self.block + _FIXED + room * self.procs + sender


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
    #: Global number of this worker's first client, for names, rooms and sender ids.
    first: int
    size: int
    window: int
    #: Total messages per second over every worker; None: window-limited flooding.
    rate: float | None
    seconds: float
    tag: str
    layout: Layout
    #: The protocol version to say hello with: 2, or 1 for a server that only speaks 1.
    version: int = 2
    #: The clients (global numbers) that speak IRC, to ``irc_port``; the others speak
    #: chatctl's protocol (or plain lines) to ``port``.
    irc: frozenset[int] = frozenset()
    irc_port: int | None = None
    #: The server sends a message back to its sender too (chatctl, IRC with echo-message);
    #: else a sender counts its own messages as received (a line relay, ngIRCd).
    echo: bool = True
    #: Connect a few at a time: a server with a listen backlog of 10 (ncat, ngIRCd).
    gentle: bool = False
    #: A cluster run: every server's chatctl port, and each client's server (an index
    #: into ``ports``, by global client number). Empty: every client to ``port``.
    ports: tuple[int, ...] = ()
    homes: tuple[int, ...] = ()

    def home(self, number: int) -> int:
        """The server (index) client ``number`` connects to: 0 outside a cluster run."""
        return self.homes[number] if self.homes else 0

    def port_of(self, number: int) -> int:
        """The chatctl port client ``number`` connects to."""
        return self.ports[self.homes[number]] if self.homes else self.port
