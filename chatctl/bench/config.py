"""What a bench run can be asked for: the scenarios, the options and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chatctl.bench.layout import Layout

SCENARIOS = ("fanout", "rate", "idle", "stuck", "rooms")
#: Smallest message text: mark, ids, sequence number and timestamp must fit.
MIN_SIZE = 64
MAX_SIZE = 4096
#: With IRC clients: an IRC line is at most 512 bytes with its CRLF, and the door cuts longer
#: text into several lines (``chatctl.irc.lines.TEXT_CHUNK_BYTES``), so one message stays one
#: line, and counts as one delivery, with room for ``:nick!user@host PRIVMSG #room :``.
MAX_IRC_SIZE = 400
#: ``rate`` without ``--rate``: messages per second over all senders.
DEFAULT_RATE = 200.0
#: ``rooms``: a connection may be in 50 rooms of a server with the default ``--max-rooms``.
MAX_ROOMS_PER_CLIENT = 50


class BenchError(Exception):
    """A bench that cannot run (bad options, no server); the message is one line for a human."""


@dataclass(frozen=True)
class BenchConfig:
    """What ``chatctl bench`` can set. ``None`` means the scenario's default."""

    scenario: str = "fanout"
    clients: int | None = None
    #: Clients that send; ``rooms``: senders in each room.
    senders: int | None = None
    #: Message text length in bytes (chatctl frames add ~30 bytes of JSON around it).
    size: int = 64
    #: Window-limited flooding: messages in flight per sender (and per room it sends into).
    window: int = 32
    #: Total messages per second over all senders: ``rate`` (200 by default), or ``rooms``
    #: at a fixed rate instead of flooding. None elsewhere.
    rate: float | None = None
    #: ``rooms``: how many rooms, members in each, rooms each client is in.
    rooms: int | None = None
    members: int | None = None
    rooms_per_client: int = 1
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
    #: The server bench starts keeps history, on a temporary file removed afterwards
    #: (without it the server gets ``--no-history``: bench never writes to the data folder).
    history: bool = False
    #: Every client speaks IRC: to the IRC door of the server bench starts (``serve --irc
    #: 0``), or, with ``host``/``port``, to that port, an IRC server (ngIRCd, or a door).
    irc: bool = False
    #: This fraction of the clients speaks IRC and the rest chatctl's protocol, in the same
    #: rooms of the server bench starts (``irc`` is a share of 1). None: ``irc`` decides.
    irc_share: float | None = None
    #: Servers bench starts, sharing one Redis backplane (a redis-server bench starts too);
    #: the clients are spread over them round-robin. 1: one server, without a backplane
    #: unless ``backplane``.
    cluster: int = 1
    #: With ``cluster`` 1: the one server on a Redis backplane (the backplane's own cost).
    backplane: bool = False
    #: The redis-server bench starts keeps an append-only file (``appendonly yes``,
    #: ``appendfsync everysec``); without it, no persistence at all (speed runs).
    redis_aof: bool = False
    #: Seconds without a new delivery after which the drain gives up.
    drain_timeout: float = 3.0
    #: Set by ``resolved``: the defaults are filled in (resolving again changes nothing).
    is_resolved: bool = field(default=False, compare=False)

    def resolved(self) -> BenchConfig:
        """Fill in the scenario defaults and check the combination."""
        if self.is_resolved:
            return self
        if self.scenario not in SCENARIOS:
            raise BenchError(f"unknown scenario {self.scenario!r}: one of {', '.join(SCENARIOS)}")
        if self.scenario == "rooms":
            return self._rooms()
        if self.rooms is not None or self.members is not None or self.rooms_per_client != 1:
            raise BenchError("--rooms, --members and --rooms-per-client are for `bench rooms`")
        if self.rate is not None and self.scenario != "rate":
            raise BenchError("--rate is for `bench rate` and `bench rooms`")
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
        rate = (self.rate or DEFAULT_RATE) if self.scenario == "rate" else None
        self._common(clients)
        return replace(
            self,
            clients=clients,
            senders=senders,
            rate=rate,
            rooms=1,
            members=clients,
            is_resolved=True,
        )

    def _rooms(self) -> BenchConfig:
        if self.clients is not None:
            raise BenchError("`bench rooms` counts its clients: --rooms x --members")
        rooms = self.rooms or 50
        members = self.members or 10
        per_client = self.rooms_per_client
        senders = self.senders or 1
        if members < 2:
            raise BenchError("--members must be at least 2")
        if not 1 <= per_client <= min(rooms, MAX_ROOMS_PER_CLIENT):
            raise BenchError(
                f"--rooms-per-client must be between 1 and --rooms (at most "
                f"{MAX_ROOMS_PER_CLIENT}, the server's default --max-rooms)"
            )
        if not 1 <= senders <= members:
            raise BenchError(f"--senders (per room) must be between 1 and --members ({members})")
        if self.raw:
            raise BenchError("`bench rooms` needs a chatctl server: line relays have no rooms")
        if self.join:
            raise BenchError("--join is for `bench idle`")
        clients = Layout(rooms, members, per_client, senders, named=True).clients
        self._common(clients)
        return replace(
            self,
            clients=clients,
            senders=senders,
            rooms=rooms,
            members=members,
            is_resolved=True,
        )

    def _common(self, clients: int) -> None:
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise BenchError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} bytes")
        self._irc_checks()
        if self.procs < 1 or self.procs > max(1, clients):
            raise BenchError("--procs must be at least 1 and at most the number of clients")
        if self.window < 1:
            raise BenchError("--window must be at least 1")
        if self.seconds <= 0 or (self.rate is not None and self.rate <= 0):
            raise BenchError("--seconds and --rate must be positive")
        if (self.host is None) != (self.port is None):
            raise BenchError("give both --host and --port for an existing server, or neither")
        if self.raw and self.port is None:
            raise BenchError("--raw needs --host and --port: bench only starts chatctl servers")
        if self.history and self.port is not None:
            raise BenchError("--history is for the server bench starts, not an existing one")
        if self.raw and self.join:
            raise BenchError("--join is for chatctl servers; raw line relays have no handshake")
        self._cluster_checks()

    def _cluster_checks(self) -> None:
        if self.cluster < 1:
            raise BenchError("--cluster is how many servers bench starts: at least 1")
        if not self.clustered:
            if self.redis_aof:
                raise BenchError("--redis-aof is for --cluster N or --backplane")
            return
        if self.port is not None:
            raise BenchError(
                "--cluster and --backplane are for the servers bench starts, not an existing one"
            )
        if self.speaks_irc:
            raise BenchError("--cluster and --backplane drive chatctl's protocol, not IRC")

    def _irc_checks(self) -> None:
        if self.irc and self.irc_share is not None:
            raise BenchError("give --irc (every client) or --irc-share (some of them), not both")
        if self.irc_share is not None:
            if not 0 < self.irc_share <= 1:
                raise BenchError("--irc-share is a fraction of the clients: above 0, at most 1")
            if self.port is not None:
                raise BenchError(
                    "--irc-share needs the server bench starts (its chatctl port and its "
                    "IRC door); for an IRC server at --port, give --irc"
                )
        if self.speaks_irc and self.raw:
            raise BenchError("--raw and --irc are two ways of speaking: give one")
        if self.speaks_irc and self.size > MAX_IRC_SIZE:
            raise BenchError(
                f"--size must be at most {MAX_IRC_SIZE} bytes with IRC clients: an IRC line "
                "is at most 512 bytes, and a longer text becomes several lines"
            )

    def layout(self, tag: str = "") -> Layout:
        """Who is in which room (of a resolved config)."""
        assert self.clients is not None
        assert self.senders is not None
        if self.scenario != "rooms":
            return Layout.single(self.clients, self.senders)
        assert self.rooms is not None
        assert self.members is not None
        return Layout(self.rooms, self.members, self.rooms_per_client, self.senders, True, tag)

    @property
    def spawns_server(self) -> bool:
        return self.port is None

    @property
    def clustered(self) -> bool:
        """The servers bench starts share a Redis backplane (one of them, or several)."""
        return self.cluster > 1 or self.backplane

    @property
    def share(self) -> float:
        """The fraction of the clients that speaks IRC (0: none, 1: every one)."""
        if self.irc_share is not None:
            return self.irc_share
        return 1.0 if self.irc else 0.0

    @property
    def speaks_irc(self) -> bool:
        """Some clients speak IRC."""
        return self.share > 0

    @property
    def irc_server(self) -> bool:
        """The server at ``port`` is an IRC server (not the chatctl port of one with a door)."""
        return self.irc and self.port is not None
