"""What a bench run can be asked for: the scenarios, the options and their checks."""

from __future__ import annotations

from dataclasses import dataclass, replace

SCENARIOS = ("fanout", "rate", "idle", "stuck")
#: Smallest message text: mark, ids, sequence number and timestamp must fit.
MIN_SIZE = 64
MAX_SIZE = 4096


class BenchError(Exception):
    """A bench that cannot run (bad options, no server); the message is one line for a human."""


@dataclass(frozen=True)
class BenchConfig:
    """What ``chatctl bench`` can set. ``None`` means the scenario's default."""

    scenario: str = "fanout"
    clients: int | None = None
    senders: int | None = None
    #: Message text length in bytes (chatctl frames add ~30 bytes of JSON around it).
    size: int = 64
    #: fanout/stuck: messages in flight per sender.
    window: int = 32
    #: rate: total messages per second over all senders.
    rate: float = 200.0
    seconds: float = 5.0
    procs: int = 1
    #: An existing server; ``None`` starts ``chatctl serve`` on loopback.
    host: str | None = None
    port: int | None = None
    #: Plain lines instead of chatctl frames (ncat --chat, a line relay).
    raw: bool = False
    #: Read CPU and memory of this process (a server bench did not start).
    server_pid: int | None = None
    #: idle: clients join the room (``hello``) instead of only connecting (``status``).
    join: bool = False
    #: Seconds without a new delivery after which the drain gives up.
    drain_timeout: float = 3.0

    def resolved(self) -> BenchConfig:
        """Fill in the scenario defaults and check the combination."""
        if self.scenario not in SCENARIOS:
            raise BenchError(f"unknown scenario {self.scenario!r}: one of {', '.join(SCENARIOS)}")
        clients = self.clients or (1000 if self.scenario == "idle" else 100)
        if self.scenario == "idle":
            senders = 0
        elif self.senders is not None:
            senders = self.senders
        else:
            senders = clients if self.scenario == "rate" else min(10, clients)
        if self.scenario != "idle" and clients < 2:
            raise BenchError("a room needs at least 2 clients")
        if not 0 < senders <= clients and self.scenario != "idle":
            raise BenchError(f"--senders must be between 1 and the number of clients ({clients})")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise BenchError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} bytes")
        if self.procs < 1 or self.procs > max(1, clients):
            raise BenchError("--procs must be at least 1 and at most the number of clients")
        if self.window < 1:
            raise BenchError("--window must be at least 1")
        if self.seconds <= 0 or self.rate <= 0:
            raise BenchError("--seconds and --rate must be positive")
        if (self.host is None) != (self.port is None):
            raise BenchError("give both --host and --port for an existing server, or neither")
        if self.raw and self.port is None:
            raise BenchError("--raw needs --host and --port: bench only starts chatctl servers")
        if self.raw and self.join:
            raise BenchError("--join is for chatctl servers; raw line relays have no handshake")
        return replace(self, clients=clients, senders=senders)

    @property
    def spawns_server(self) -> bool:
        return self.port is None

    @property
    def echo(self) -> bool:
        """Does the server send a message back to its sender? chatctl does, line relays do not."""
        return not self.raw
