"""The client core: connect, handshake, send, receive. asyncio only, no terminal code.

One job a module: ``errors`` (what it raises), ``connection`` (dialling, TLS and
pinning, reading frames), ``handshake`` (hello until welcomed, with the right
secret), ``claims`` (the secrets of claimed names), ``marks`` (read
marks), ``unconfirmed`` (what has not come back), ``rooms`` (the rooms we are in),
``core`` (``ChatClient``), ``pages`` (paging back through a room's history: ``past``),
``oneshot`` (``fetch_status``, ``forget_claim``), ``failover`` (several servers: which
next). The public names are re-exported here.
"""

from chatctl.client.claims import ClaimBook
from chatctl.client.connection import Connection, TlsOptions
from chatctl.client.core import (
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_TIMEOUT,
    ChatClient,
)
from chatctl.client.errors import (
    Banned,
    ClientError,
    ConnectionLost,
    Dismissed,
    FingerprintChanged,
    Refused,
    Replaced,
    UnknownServer,
    Unreachable,
    Untrusted,
    WrongTransport,
    backoff,
    worth_retrying,
)
from chatctl.client.failover import first_answer, rounds, try_another
from chatctl.client.oneshot import fetch_status, forget_claim
from chatctl.client.pages import Past, past
from chatctl.client.rooms import Rooms, RoomView
from chatctl.client.unconfirmed import Unconfirmed

__all__ = [
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "Banned",
    "ChatClient",
    "ClaimBook",
    "ClientError",
    "Connection",
    "ConnectionLost",
    "Dismissed",
    "FingerprintChanged",
    "Past",
    "Refused",
    "Replaced",
    "RoomView",
    "Rooms",
    "TlsOptions",
    "Unconfirmed",
    "UnknownServer",
    "Unreachable",
    "Untrusted",
    "WrongTransport",
    "backoff",
    "fetch_status",
    "first_answer",
    "forget_claim",
    "past",
    "rounds",
    "try_another",
    "worth_retrying",
]
