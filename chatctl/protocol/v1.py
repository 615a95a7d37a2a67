"""Version 1 of the protocol, as a view of version 2: what a version-1 client receives.

A version-1 client knows one room. It is put in ``#lobby`` and gets that room's
events in the frames of the version-1 docs, each with the room's ``seq``, so its
"every sequenced frame, once, no gaps" still holds: exactly one version-1 frame per
event, never two. Events version 1 has no frame for are mapped to the nearest one:

* someone parts ``#lobby``: ``leave`` with reason ``part``;
* a nick change: ``leave`` of the old name with reason ``nick`` (the new name comes
  in quietly, as joins do in big rooms, which version 1 already allows);
* a ``/me`` action: a ``message`` whose text starts ``/me `` (what a version-1 client
  showed for ``/me`` before there were actions).
"""

from __future__ import annotations

from chatctl.protocol.codec import MAX_SERVER_FRAME_BYTES, FrameDecoder
from chatctl.protocol.codes import LeaveReason
from chatctl.protocol.frames import Ping, Pong, _Frame, tags
from chatctl.protocol.replies import (
    Error,
    Joined,
    Left,
    Message,
    NickChanged,
    Parted,
    RoomEvent,
    Shutdown,
)
from chatctl.protocol.status import StatusReply

VERSION = 1


class Welcome(_Frame, tag="welcome", frozen=True, omit_defaults=False):
    """The version-1 welcome: the room's users (at most ``WELCOME_NAMES``) and its ``seq``."""

    version: int
    name: str
    users: list[str]
    server: str
    seq: int
    online: int


V1Frame = Message | Joined | Left


def view(event: RoomEvent) -> V1Frame:
    """The version-1 frame for a ``#lobby`` event (room and ids dropped)."""
    match event:
        case Message(action=True):
            return Message(event.seq, event.time, event.name, f"/me {event.text}")
        case Message():
            return Message(event.seq, event.time, event.name, event.text)
        case Joined():
            return Joined(event.seq, event.time, event.name)
        case Left():
            return Left(event.seq, event.time, event.name, event.reason)
        case Parted():
            return Left(event.seq or 0, event.time, event.name, event.reason or LeaveReason.PART)
        case NickChanged():
            return Left(event.seq or 0, event.time, event.name, LeaveReason.NICK)


#: What a version-1 client reads: the version-1 welcome instead of version 2's.
ServerFrameV1 = Welcome | Message | Joined | Left | StatusReply | Error | Shutdown | Ping | Pong


def server_frame_decoder(
    max_frame_bytes: int = MAX_SERVER_FRAME_BYTES,
) -> FrameDecoder[ServerFrameV1]:
    """A decoder of what a version-1 client receives (for tests and version-1 tools)."""
    return FrameDecoder(ServerFrameV1, tags(ServerFrameV1), max_frame_bytes)  # type: ignore[arg-type]
