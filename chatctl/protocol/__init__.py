"""The chatctl wire protocol: frames, limits, validation and sanitising.

This package is pure (sans-I/O, in the manner of h11 and websockets): bytes go in,
frames come out, frames go in, bytes come out. It imports no asyncio, socket or
terminal code, so the server, the client, tests and third-party tools all share
one definition of what is on the wire. ``docs/protocol.md`` documents it for
outsiders; keep the two in step.

One job a module: ``codes`` (error codes, leave reasons), ``frames`` (the structs),
``codec`` (bytes <-> frames), ``text`` (names, limits, sanitising). Everything
public is re-exported here.
"""

from chatctl.protocol.codec import (
    BLANK,
    MAX_SERVER_FRAME_BYTES,
    Blank,
    FrameDecoder,
    client_frame_decoder,
    encode,
    server_frame_decoder,
    sniff,
)
from chatctl.protocol.codes import FATAL_CODES, ErrorCode, LeaveReason, ProtocolError, Reason
from chatctl.protocol.frames import (
    PROTOCOL_VERSION,
    Bye,
    ClientFrame,
    Error,
    Frame,
    Hello,
    Joined,
    Left,
    Message,
    Ping,
    Pong,
    Say,
    ServerFrame,
    ServerInfo,
    Shutdown,
    StatusReply,
    StatusRequest,
    UserInfo,
    Welcome,
)
from chatctl.protocol.text import (
    MAX_FRAME_BYTES,
    MAX_NAME_LENGTH,
    MAX_TEXT_BYTES,
    MAX_TEXT_LINES,
    NAME_PATTERN,
    WELCOME_NAMES,
    check_name,
    check_text,
    clean_frame,
    clean_line,
    clean_text,
    name_key,
)

__all__ = [
    "BLANK",
    "FATAL_CODES",
    "MAX_FRAME_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_SERVER_FRAME_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_TEXT_LINES",
    "NAME_PATTERN",
    "PROTOCOL_VERSION",
    "WELCOME_NAMES",
    "Blank",
    "Bye",
    "ClientFrame",
    "Error",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "Hello",
    "Joined",
    "LeaveReason",
    "Left",
    "Message",
    "Ping",
    "Pong",
    "ProtocolError",
    "Reason",
    "Say",
    "ServerFrame",
    "ServerInfo",
    "Shutdown",
    "StatusReply",
    "StatusRequest",
    "UserInfo",
    "Welcome",
    "check_name",
    "check_text",
    "clean_frame",
    "clean_line",
    "clean_text",
    "client_frame_decoder",
    "encode",
    "name_key",
    "server_frame_decoder",
    "sniff",
]
