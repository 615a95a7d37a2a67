"""The frames: one msgspec struct per ``type``, client to server and server to client.

msgspec decodes a tagged union straight into these (``type`` is the tag), so
shape and types are checked while decoding; ``docs/protocol.md`` documents each.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

PROTOCOL_VERSION = 1

Version = Annotated[int, msgspec.Meta(ge=0, le=2**31)]


class _Frame(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of every frame; ``type`` on the wire is each subclass's tag."""


# Client -> server


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


class Hello(_Frame, tag="hello", frozen=True, omit_defaults=True):
    """First frame of a chat participant: protocol version, wanted name, room password."""

    version: Version
    name: str
    password: str | None = None

    def __repr__(self) -> str:  # never show the password, in a log or a traceback
        masked = _masked(self.password)
        return f"Hello(version={self.version!r}, name={self.name!r}, password={masked})"


class Say(_Frame, tag="say", frozen=True):
    """A message to the room; may span several lines (a paste is one message)."""

    text: str


class StatusRequest(_Frame, tag="status", frozen=True, omit_defaults=True):
    """Ask for server facts; allowed with or without joining (password: the room's, if any)."""

    password: str | None = None

    def __repr__(self) -> str:
        return f"StatusRequest(password={_masked(self.password)})"


class Bye(_Frame, tag="bye", frozen=True):
    """Leave on purpose; lets the server tell "quit" from "dropped"."""


# Both directions


class Ping(_Frame, tag="ping", frozen=True):
    """Liveness probe; the peer answers with ``pong``."""


class Pong(_Frame, tag="pong", frozen=True):
    """Answer to ``ping``."""


# Server -> client


class Welcome(_Frame, tag="welcome", frozen=True):
    """Handshake accepted: who is online (the newcomer included).

    ``users`` holds at most ``WELCOME_NAMES`` names, the longest present first; ``online``
    counts everyone. (0 from a server that did not send it: then ``users`` is everyone.)
    """

    version: int
    name: str
    users: list[str]
    server: str
    seq: int
    online: int = 0


class Message(_Frame, tag="message", frozen=True):
    """A relayed message, stamped by the server with its time and sequence number."""

    seq: int
    time: float
    name: str
    text: str


class Joined(_Frame, tag="join", frozen=True):
    """Someone entered the room."""

    seq: int
    time: float
    name: str


class Left(_Frame, tag="leave", frozen=True):
    """Someone left; ``reason`` says why (quit, dropped, error, slow_consumer, ...)."""

    seq: int
    time: float
    name: str
    reason: str


class UserInfo(msgspec.Struct, frozen=True):
    """One connected participant, as ``status`` reports it."""

    name: str
    address: str
    connected_at: float
    idle_seconds: float
    messages_sent: int
    bytes_queued: int


class ServerInfo(msgspec.Struct, frozen=True):
    """Facts about the server itself, as ``status`` reports them."""

    version: str
    protocol: int
    started_at: float
    uptime_seconds: float
    users: int
    connections: int
    messages_relayed: int
    leave_reasons: dict[str, int]


class StatusReply(_Frame, tag="status_reply", frozen=True):
    """Answer to ``status``."""

    server: ServerInfo
    users: list[UserInfo]


class Error(_Frame, tag="error", frozen=True, omit_defaults=True):
    """Something the peer sent was refused; ``code`` is stable, ``message`` is for humans.

    ``retry_after_ms`` comes with ``throttled``: when trying again may succeed.
    """

    code: str
    message: str
    retry_after_ms: int | None = None


class Shutdown(_Frame, tag="shutdown", frozen=True):
    """The server is going away; the connection closes next."""

    reason: str


ClientFrame = Hello | Say | StatusRequest | Bye | Ping | Pong
ServerFrame = Welcome | Message | Joined | Left | StatusReply | Error | Shutdown | Ping | Pong
Frame = ClientFrame | ServerFrame

_CLIENT_TAGS = frozenset({"hello", "say", "status", "bye", "ping", "pong"})
_SERVER_TAGS = frozenset(
    {"welcome", "message", "join", "leave", "status_reply", "error", "shutdown", "ping", "pong"}
)
