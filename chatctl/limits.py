"""Per-client and per-address limits: pure bookkeeping, the caller passes the time.

No asyncio here, so each rule is tested on its own with made-up clocks; the
server core decides what to do when a limit says no.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from chatctl.protocol.codes import ErrorCode

#: The window of the per-address limit on new connections ("30 a minute").
NEW_CONNECTION_WINDOW = 60.0
#: The window of the wrong-password throttle ("three a minute").
PASSWORD_FAILURE_WINDOW = 60.0


class TokenBucket:
    """Flood pacing: ``burst`` messages at once, then ``rate`` per second.

    ``delay`` never drops anything: it says how long to wait before the next
    message may go, and the server stops reading from that client meanwhile
    (the way Ergo's fakelag works), so a fast sender is slowed, not cut.
    """

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = max(1, burst)
        self.rate = rate
        self.tokens = float(self.burst)
        self.updated = now

    def delay(self, now: float, cost: int = 1) -> float:
        """Take ``cost`` tokens (at most a burst's) and return 0.0, or return the seconds
        until they are there."""
        if self.rate <= 0:
            return 0.0
        need = cost if cost <= self.burst else self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= need - 1e-9:  # waiting exactly the delay returned must suffice
            self.tokens = max(0.0, self.tokens - need)
            return 0.0
        return (need - self.tokens) / self.rate


class ErrorBudget:
    """At most ``limit`` errors in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.times: deque[float] = deque()

    def spend(self, now: float) -> bool:
        """Count one error; True when this one goes over the budget."""
        self.times.append(now)
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        return len(self.times) >= self.limit


@dataclass(frozen=True)
class Refusal:
    """Why a connection is refused, and when trying again may work."""

    code: ErrorCode
    message: str
    retry_after_ms: int | None = None
    #: With ``name_claimed``: the server's identity, for the client to find its secret by.
    server_id: str | None = None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class AddressGate:
    """Concurrent connections and new connections per minute, per address.

    Loopback is exempt unless ``limit_loopback``: on a shared box everyone comes
    from 127.0.0.1, and the per-address rule is there for the LAN.
    """

    max_concurrent: int
    max_new_per_minute: int
    limit_loopback: bool = False
    concurrent: dict[str, int] = field(default_factory=dict)
    recent: dict[str, deque[float]] = field(default_factory=dict)

    def admit(self, host: str, now: float) -> Refusal | None:
        """Count a new connection from ``host``, or say why it is refused."""
        if not self.limit_loopback and is_loopback(host):
            return None
        if self.concurrent.get(host, 0) >= self.max_concurrent:
            return Refusal(
                ErrorCode.THROTTLED,
                f"too many connections from your address (at most {self.max_concurrent})",
                5000,
            )
        times = self.recent.setdefault(host, deque())
        while times and times[0] <= now - NEW_CONNECTION_WINDOW:
            times.popleft()
        if len(times) >= self.max_new_per_minute:
            wait = times[0] + NEW_CONNECTION_WINDOW - now
            return Refusal(
                ErrorCode.THROTTLED,
                f"too many new connections from your address; try again in {wait:.0f} s",
                max(1, int(wait * 1000)),
            )
        times.append(now)
        self.concurrent[host] = self.concurrent.get(host, 0) + 1
        return None

    def release(self, host: str) -> None:
        """An admitted connection from ``host`` ended."""
        count = self.concurrent.get(host, 0) - 1
        if count > 0:
            self.concurrent[host] = count
        else:
            self.concurrent.pop(host, None)

    def prune(self, now: float) -> None:
        """Forget addresses not seen for a minute, so the table does not grow forever."""
        stale = now - NEW_CONNECTION_WINDOW
        for host in [h for h, t in self.recent.items() if not t or t[-1] <= stale]:
            del self.recent[host]


class FailureThrottle:
    """At most ``limit`` failures (wrong passwords) per address in ``window`` seconds.

    Unlike ``AddressGate`` it applies to loopback too: a password guesser on the
    server's own machine is still a guesser.
    """

    def __init__(self, limit: int = 3, window: float = PASSWORD_FAILURE_WINDOW) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, host: str, now: float) -> deque[float] | None:
        times = self.failures.get(host)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.failures[host]
            return None
        return times

    def blocked(self, host: str, now: float) -> float | None:
        """Seconds until ``host`` may try again, or None if it may try now."""
        times = self._recent(host, now)
        if times is None or len(times) < self.limit:
            return None
        return max(0.001, times[0] + self.window - now)

    def fail(self, host: str, now: float) -> None:
        """Count one failure from ``host``."""
        self._recent(host, now)
        self.failures.setdefault(host, deque()).append(now)

    def prune(self, now: float) -> None:
        for host in list(self.failures):
            self._recent(host, now)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: list[str] | tuple[str, ...]) -> list[Network]:
    """``10.0.0.0/8``, ``192.168.1.7`` (one address), ``fd00::/8``; raises ValueError."""
    networks: list[Network] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network in CIDR form: {cidr!r}") from None
    return networks


class AccessList:
    """``--allow`` and ``--deny``: deny wins; with any allow, only those may connect."""

    def __init__(self, allow: list[Network], deny: list[Network]) -> None:
        self.allow = allow
        self.deny = deny

    def permits(self, host: str) -> bool:
        if not self.allow and not self.deny:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False  # not an IP address: nothing to match, so not on any allow list
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.deny):
            return False
        return not self.allow or any(address in network for network in self.allow)
