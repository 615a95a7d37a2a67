"""Everything ``chatctl serve`` can set, with the documented defaults.

Light on purpose (no asyncio, no ssl): the CLI reads the defaults from here for
``--help`` and shell completion without loading the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatctl.protocol.text import MAX_FRAME_BYTES, MAX_TEXT_BYTES, MAX_TEXT_LINES


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
    #: The room password, or None. Never logged, never shown by repr().
    password: str | None = field(default=None, repr=False)
    #: Wrong passwords per address per minute before it gets ``throttled``.
    max_password_failures: int = 3
    #: ``--allow`` / ``--deny`` networks (CIDR): deny wins; with any allow, only those.
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @property
    def sweep_interval(self) -> float:
        """How often timers are checked: often enough for the shortest of them."""
        shortest = min(
            self.handshake_timeout, self.ping_interval, self.ping_timeout, self.soft_queue_seconds
        )
        return max(0.01, min(1.0, shortest / 4))
