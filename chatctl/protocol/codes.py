"""Stable codes: what ``error`` frames carry and why a connection ended.

Both are ``StrEnum``: they are the strings on the wire and in ``status``, and code
compares them as enums, so a typo is a NameError rather than a silent new reason.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes carried by ``error`` frames (see docs/protocol.md)."""

    INVALID_FRAME = "invalid_frame"
    INVALID_UTF8 = "invalid_utf8"
    UNKNOWN_TYPE = "unknown_type"
    FRAME_TOO_LONG = "frame_too_long"
    MESSAGE_TOO_LONG = "message_too_long"
    EMPTY_MESSAGE = "empty_message"
    INVALID_NAME = "invalid_name"
    NAME_TAKEN = "name_taken"
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    TOO_MANY_ERRORS = "too_many_errors"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    SERVER_FULL = "server_full"
    THROTTLED = "throttled"
    UNEXPECTED_TLS = "unexpected_tls"
    UNEXPECTED_HTTP = "unexpected_http"
    SLOW_CONSUMER = "slow_consumer"
    PING_TIMEOUT = "ping_timeout"
    PASSWORD_REQUIRED = "password_required"  # noqa: S105  an error code, not a password
    WRONG_PASSWORD = "wrong_password"  # noqa: S105  an error code, not a password
    ACCESS_DENIED = "access_denied"
    # version 2: rooms and private messages
    INVALID_ROOM = "invalid_room"
    NOT_IN_ROOM = "not_in_room"
    ALREADY_IN_ROOM = "already_in_room"
    TOO_MANY_ROOMS = "too_many_rooms"
    NO_SUCH_USER = "no_such_user"
    PRIVATE_UNSUPPORTED = "private_unsupported"
    # claimed names (servers that keep history)
    NAME_CLAIMED = "name_claimed"
    NO_HISTORY = "no_history"
    #: The connection's name joined again, with its secret, from another connection.
    REPLACED = "replaced"
    # moderation
    NOT_OPERATOR = "not_operator"
    #: You are muted in that room: your line was not sent.
    MUTED = "muted"
    #: The target is a server operator: no room operator can kick, mute or deop them.
    PROTECTED = "protected"
    #: Banned from the room (or the whole server): the message says by whom, why, how long.
    BANNED = "banned"
    #: The room is moderated: only its operators and the voiced speak.
    MODERATED = "moderated"
    #: A version-1 connection kicked out of ``#lobby``, its only room: it is closed.
    KICKED = "kicked"
    #: The connection said hello ``read_only``: it watches, it does not send.
    READ_ONLY = "read_only"
    # several servers sharing rooms (``serve --backplane``)
    #: The server lost its backplane (Redis): what you send is held, then refused.
    BACKPLANE_DOWN = "backplane_down"
    #: The server could not read everything the cluster said: some messages are missing.
    BACKPLANE_GAP = "backplane_gap"


#: After these the stream cannot be trusted to resynchronise: close the connection.
FATAL_CODES = frozenset(
    {ErrorCode.FRAME_TOO_LONG, ErrorCode.UNEXPECTED_TLS, ErrorCode.UNEXPECTED_HTTP}
)


class ProtocolError(Exception):
    """The one error type of this module: a stable code plus a human sentence.

    The sentence never quotes the offending input: it may be hostile or secret.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


class LeaveReason(StrEnum):
    """Why a connection ended: ``leave`` frames, the server log, ``leave_reasons`` in status.

    A connection closed because of an error frame ends with that ``ErrorCode`` instead
    (``frame_too_long``, ``too_many_errors``, the refusals): see ``Reason``.
    """

    QUIT = "quit"
    DROPPED = "dropped"
    SHUTDOWN = "shutdown"
    SLOW_CONSUMER = "slow_consumer"
    PING_TIMEOUT = "ping_timeout"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    #: The handshake was refused (the error frame said why; the refusal is counted by code).
    REFUSED = "refused"
    #: A TLS port: the peer spoke plain TCP, the handshake took too long, the client does not
    #: trust our certificate, hung up mid-handshake, or anything else went wrong.
    NOT_TLS = "not_tls"
    TLS_HANDSHAKE_TIMEOUT = "tls_handshake_timeout"
    TLS_UNTRUSTED = "tls_untrusted"
    TLS_ABANDONED = "tls_abandoned"
    TLS_ERROR = "tls_error"
    #: Version-1 views only (``protocol.v1``): someone parted ``#lobby`` or changed name.
    PART = "part"
    NICK = "nick"
    #: Their server stopped (killed, cut off): another server of the cluster tells.
    SERVER_GONE = "server_gone"


#: Every reason a connection may end with.
Reason = LeaveReason | ErrorCode
