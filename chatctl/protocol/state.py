"""Which frames a connection may send, in which phase: the rules, without sockets.

Everything that decides whether a frame is acceptable *before* the server looks
at its content lives here (as h11 keeps its state machine in one file), so the
rules are tested as a table. What a frame then does (rooms, names, private
messages) is the server's ``chatctl.server.chat``.
"""

from __future__ import annotations

from enum import StrEnum

from chatctl.protocol.codes import ErrorCode, ProtocolError
from chatctl.protocol.frames import (
    V2_TYPES,
    Bye,
    ClientFrame,
    Forget,
    Hello,
    Ping,
    Pong,
    StatusRequest,
)


class Phase(StrEnum):
    """A connection is greeting (no ``hello`` yet), chatting (joined), or closing."""

    GREETING = "greeting"
    CHATTING = "chatting"
    CLOSING = "closing"


#: Frames that need no name: a monitor may connect, ask for status and leave; a claim
#: is forgotten with its secret, whoever is connected.
_ANY_PHASE = (StatusRequest, Ping, Pong, Bye, Forget)


def check_allowed(phase: Phase, version: int, frame: ClientFrame) -> ProtocolError | None:
    """Why ``frame`` may not be sent now, or None if it may.

    ``version`` is the one the connection said hello with (1 until it has): a
    version-1 connection that sends a version-2 frame is answered as a version-1
    server would answer it, ``unknown_type``.
    """
    if isinstance(frame, _ANY_PHASE):
        return None
    if isinstance(frame, V2_TYPES) and version < 2 and phase is Phase.CHATTING:
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown or missing frame type")
    if isinstance(frame, Hello):
        if phase is Phase.GREETING:
            return None
        return ProtocolError(ErrorCode.ALREADY_JOINED, "already joined")
    if phase is Phase.GREETING:
        return ProtocolError(ErrorCode.NOT_JOINED, "send hello first")
    if phase is Phase.CLOSING:
        return ProtocolError(ErrorCode.NOT_JOINED, "the connection is closing")
    return None
