"""A latency histogram cheap enough to fill on the event loop: one bisect and two adds.

``History.commit`` fills one with each transaction's time; ``serve --metrics`` reads it
at scrape time as ``chatctl_history_write_seconds``. Light on purpose (no
prometheus_client): the server keeps it whether or not anyone scrapes.
"""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds (seconds, inclusive, as Prometheus's ``le``): a WAL commit takes tens of
#: microseconds on an SSD, milliseconds on a busy disk; past a second is an incident.
BOUNDS: tuple[float, ...] = (
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Latency:
    """Counts per bucket (the last one: above every bound) and their sum, since start."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.total += seconds

    def copy(self) -> Latency:
        """A copy to read from another thread while this one goes on filling."""
        other = Latency()
        other.counts, other.total = list(self.counts), self.total
        return other

    def cumulative(self) -> list[tuple[float, int]]:
        """(bound, how many took at most that), each bound, then (inf, all of them)."""
        running, out = 0, []
        for bound, n in zip((*BOUNDS, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
