"""Everything ``chatctl serve`` can set, with the documented defaults.

Light on purpose (no asyncio, no ssl): the CLI reads the defaults from here for
``--help`` and shell completion without loading the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatctl.wirelimits import MAX_FRAME_BYTES, MAX_TEXT_BYTES, MAX_TEXT_LINES


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``chatctl serve`` can set; the defaults are the documented ones."""

    host: str = "127.0.0.1"
    port: int = 5000
    #: Report each relayed message to the observer (the log's ``--verbose``).
    report_messages: bool = False
    #: Unsent bytes past which a client is cut off at once (``slow_consumer``)...
    max_queue_bytes: int = 1024 * 1024
    #: ...and past which, held for ``soft_queue_seconds``, it is cut off too.
    soft_queue_bytes: int = 256 * 1024
    soft_queue_seconds: float = 10.0
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_text_bytes: int = MAX_TEXT_BYTES
    max_text_lines: int = MAX_TEXT_LINES
    #: ``max_errors`` error replies within ``error_window`` seconds close the connection.
    max_errors: int = 10
    error_window: float = 10.0
    handshake_timeout: float = 10.0
    #: A client silent this long is pinged, and dropped if still silent ``ping_timeout`` later.
    ping_interval: float = 60.0
    ping_timeout: float = 30.0
    #: Flood pacing per client: ``burst`` frames at once, then ``rate`` per second (0: off).
    burst: int = 20
    rate: float = 5.0
    max_clients: int = 1000
    #: Joins and leaves are announced while the room holds at most this many people (0:
    #: never). Above it they pass quietly, as on Twitch above 1 000 chatters: announcing
    #: each one to everyone makes filling a room O(N^2) frames (15 000: 112 million).
    announce_limit: int = 1000
    #: Rooms one connection may be in at once (``too_many_rooms`` past it).
    max_rooms: int = 50
    max_per_address: int = 16
    max_new_per_minute: int = 30
    #: Apply the per-address limits to loopback clients too.
    limit_loopback: bool = False
    #: Seconds clients get to go after the shutdown notice before being aborted.
    shutdown_grace: float = 1.0
    backlog: int = 1024
    #: With TLS (a context given to ChatServer): seconds the handshake may take.
    tls_handshake_timeout: float = 10.0
    #: ``--backplane redis://HOST:PORT/DB``: share rooms with the other servers on it.
    backplane: str | None = None
    #: Share the port with other processes (``SO_REUSEPORT``, ``serve --workers``).
    reuse_port: bool = False
    #: ``serve --workers``: this process's number (1..N), so the cluster tells the workers
    #: that share the port apart (``HOST:PORT/w2``); None: not a worker.
    worker: int | None = None
    #: The room password, or None. Never logged, never shown by repr().
    password: str | None = field(default=None, repr=False)
    #: Wrong passwords per address per minute before it gets ``throttled``.
    max_password_failures: int = 3
    #: ``--allow`` / ``--deny`` networks (CIDR): deny wins; with any allow, only those.
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    #: The history file (SQLite), or None to keep nothing (``--no-history``; tests, embedders).
    history: str | None = None
    #: Retention: messages older than this many seconds, or beyond the newest this many
    #: of their room, are deleted in small batches (None: kept).
    keep_seconds: float | None = None
    keep_messages: int | None = None
    #: Keep private messages between claimed names (readable by those two only).
    private_history: bool = True
    #: Server operators (``--op``): claimed names that may moderate every room...
    operators: tuple[str, ...] = ()
    #: ...and a file of more of them, one per line, read again on SIGHUP (``--ops-file``).
    ops_file: str | None = None
    #: The first person into an empty room is its operator (``--no-room-founders``: not).
    room_founders: bool = True
    #: The IRC door (``--irc [HOST:]PORT``): where IRC clients connect (None: closed).
    #: No host: the same as ``host``.
    irc_port: int | None = None
    irc_host: str | None = None
    #: ``--metrics [HOST:]PORT``: Prometheus metrics at ``/metrics`` (None: none). Loopback
    #: unless a host is given: they tell anyone who asks the rooms' names and sizes.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @property
    def sweep_interval(self) -> float:
        """How often timers are checked: often enough for the shortest of them."""
        shortest = min(
            self.handshake_timeout, self.ping_interval, self.ping_timeout, self.soft_queue_seconds
        )
        return max(0.01, min(1.0, shortest / 4))


@dataclass(frozen=True)
class Limit:
    """One limit ``chatctl serve`` takes as an option, declared once.

    The CLI builds the option from this (its default from ``ServerConfig()``, its type
    from the field's), so a flag, its help and its range are never written twice.
    """

    #: The ``ServerConfig`` field the option sets (and the command's parameter name).
    name: str
    flag: str
    help: str
    #: What the user types after the flag, as ``--help`` shows it (a switch shows none).
    metavar: str = "N"
    #: Smallest value accepted (checked by the command line); None for a switch.
    minimum: float | None = 0
    panel: str = "Limits"


#: The limits ``chatctl serve`` takes, in ``--help`` order.
LIMITS: tuple[Limit, ...] = (
    Limit(
        "rate",
        "--rate",
        "Messages per second per client once the burst is spent; 0 turns pacing off.",
    ),
    Limit("burst", "--burst", "Messages a client may send at once before pacing.", minimum=1),
    Limit("max_clients", "--max-clients", "Connections at once; more get server_full.", minimum=1),
    Limit(
        "announce_limit",
        "--announce-limit",
        "Announce joins and leaves while the room has at most this many people (0: never).",
    ),
    Limit(
        "max_rooms",
        "--max-rooms",
        "Rooms one connection may be in at once (too_many_rooms past it).",
        minimum=1,
    ),
    Limit(
        "max_per_address",
        "--max-per-address",
        "Connections at once from one address (loopback exempt).",
        minimum=1,
    ),
    Limit(
        "max_new_per_minute",
        "--max-new-per-minute",
        "New connections per minute from one address (loopback exempt).",
        minimum=1,
    ),
    Limit(
        "limit_loopback",
        "--limit-loopback",
        "Apply the per-address limits to loopback too.",
        metavar="",
        minimum=None,
    ),
    Limit(
        "max_queue_bytes",
        "--max-queue",
        "Bytes queued to a client before it is cut off (slow_consumer).",
        metavar="BYTES",
        minimum=1,
    ),
    Limit(
        "soft_queue_bytes",
        "--soft-queue",
        "Bytes queued to a client that, held for --soft-queue-time, cut it off.",
        metavar="BYTES",
        minimum=1,
    ),
    Limit(
        "soft_queue_seconds",
        "--soft-queue-time",
        "Seconds a client may stay over --soft-queue.",
        metavar="SECONDS",
    ),
    Limit(
        "max_frame_bytes",
        "--max-frame",
        "Longest frame in bytes (frame_too_long, then closed).",
        metavar="BYTES",
        minimum=64,
    ),
    Limit(
        "max_text_bytes",
        "--max-message",
        "Longest message text in UTF-8 bytes (message_too_long).",
        metavar="BYTES",
        minimum=1,
    ),
    Limit(
        "max_text_lines", "--max-lines", "Most lines in one message (message_too_long).", minimum=1
    ),
    Limit(
        "max_errors",
        "--max-errors",
        "Errors within --error-window that close a connection.",
        minimum=1,
    ),
    Limit(
        "error_window",
        "--error-window",
        "Seconds over which --max-errors is counted.",
        metavar="SECONDS",
    ),
    Limit(
        "handshake_timeout",
        "--handshake-timeout",
        "Seconds to send hello before being closed.",
        metavar="SECONDS",
    ),
    Limit(
        "ping_interval",
        "--ping-interval",
        "Seconds of silence before a client is pinged.",
        metavar="SECONDS",
    ),
    Limit(
        "ping_timeout",
        "--ping-timeout",
        "Seconds to answer a ping before being dropped.",
        metavar="SECONDS",
    ),
    Limit(
        "tls_handshake_timeout",
        "--tls-handshake-timeout",
        "Seconds a TLS handshake may take.",
        metavar="SECONDS",
        minimum=0.001,
    ),
)
