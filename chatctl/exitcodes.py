"""Exit codes of the ``chatctl`` command, one per cause (documented in README.md).

Light on purpose: every command, ``--help`` and shell completion can name an exit
code without loading the client (asyncio, ssl). ``exit_code_for`` imports the client's
errors when it is called, by which time the client that raised one is loaded anyway.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatctl.client import ClientError


class ExitCode(IntEnum):
    OK = 0
    #: A bug: an unexpected error (run with CHATCTL_DEBUG=1 for the traceback).
    INTERNAL = 1
    #: Bad command line (Typer's own code).
    USAGE = 2
    #: The server could not be reached, or did not answer in time.
    UNREACHABLE = 3
    NAME_TAKEN = 4
    INVALID_NAME = 5
    #: The server went away mid-session without notice.
    CONNECTION_LOST = 6
    #: The server announced its shutdown.
    SERVER_SHUTDOWN = 7
    #: Refused for another reason (unsupported version, not a chatctl server, ...).
    REFUSED = 8
    #: ``serve`` could not start: it cannot listen (port in use, address not available,
    #: permission), or its TLS set-up or history file cannot be used.
    CANNOT_START = 9
    #: TLS: the server's certificate is not trusted (unknown and not accepted, or not
    #: the ``--fingerprint`` given, or invalid), or the TLS setup failed.
    UNTRUSTED = 10
    #: TLS: a pinned server presents another certificate.
    FINGERPRINT_CHANGED = 11
    #: The room needs a password and none, or a wrong one, was given.
    PASSWORD = 12
    #: The name is claimed on that server, and this client does not have its secret.
    NAME_CLAIMED = 13
    #: ``chatctl send``: the server refused the message (too long, no such user, ...).
    NOT_SENT = 14
    #: ``chatctl export`` and ``chatctl history``: the server keeps no history (``--no-history``).
    NO_HISTORY = 15
    #: The name joined again, with its secret, from elsewhere: this session was closed.
    REPLACED = 16
    #: Banned from the server, or from the room asked for, by an operator.
    BANNED = 17


def exit_code_for(exc: ClientError) -> ExitCode:
    """The exit code for a client-core error."""
    from chatctl.client import (
        Banned,
        ConnectionLost,
        FingerprintChanged,
        Refused,
        Replaced,
        Unreachable,
        Untrusted,
    )
    from chatctl.protocol import ErrorCode

    refusals = {
        ErrorCode.NAME_TAKEN: ExitCode.NAME_TAKEN,
        ErrorCode.INVALID_NAME: ExitCode.INVALID_NAME,
        ErrorCode.PASSWORD_REQUIRED: ExitCode.PASSWORD,
        ErrorCode.WRONG_PASSWORD: ExitCode.PASSWORD,
        ErrorCode.NAME_CLAIMED: ExitCode.NAME_CLAIMED,
        ErrorCode.BANNED: ExitCode.BANNED,
    }
    if isinstance(exc, Unreachable):
        return ExitCode.UNREACHABLE
    if isinstance(exc, ConnectionLost):
        return ExitCode.CONNECTION_LOST
    if isinstance(exc, Replaced):
        return ExitCode.REPLACED
    if isinstance(exc, Banned):
        return ExitCode.BANNED
    if isinstance(exc, Untrusted):
        return ExitCode.UNTRUSTED
    if isinstance(exc, FingerprintChanged):
        return ExitCode.FINGERPRINT_CHANGED
    if isinstance(exc, Refused) and exc.code in refusals:
        return refusals[ErrorCode(exc.code)]
    return ExitCode.REFUSED
