"""What the client core raises, and which failures a reconnecting client tries again.

Each error's message is one line for a human; ``reason`` is the same without the
address, for a UI that already shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

from chatctl.protocol import ErrorCode


class ClientError(Exception):
    """Base of what the client core raises; the message is one line for a human.

    ``reason`` is the same without the address, for a UI that already shows it.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class Unreachable(ClientError):
    """No connection could be made, or nothing answered in time."""


class Refused(ClientError):
    """The server answered the handshake with an error; ``code`` is the protocol code.

    ``retry_after`` (seconds) is the server's hint, with ``throttled``, of when to try again.
    """

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class ConnectionLost(ClientError):
    """The connection ended without a shutdown notice and without us leaving."""


class Dismissed(ClientError):
    """The server closed our session on purpose, and said why: not a loss to reconnect
    after."""


class Replaced(Dismissed):
    """Our name joined again, with its secret, from another connection: this one is closed
    (not worth a reconnection, which would only close that one in turn)."""


class Banned(Dismissed):
    """An operator banned us from the server."""


class WrongTransport(ClientError):
    """TLS on one side only: the message says which flag to change."""


class Untrusted(ClientError):
    """The server's certificate is not trusted (and was not pinned), or TLS failed."""


class UnknownServer(Untrusted):
    """No CA vouches for the server's certificate and it is not pinned yet.

    A UI may show ``fingerprint`` to the user, and on their word add it to the
    known servers (``TlsOptions.known``) and connect again.
    """

    def __init__(self, where: str, fingerprint: str) -> None:
        super().__init__(
            f"{where} presents a certificate no CA vouches for, fingerprint {fingerprint}; "
            "if that is the fingerprint `chatctl serve --tls` logged, run again with "
            f"--fingerprint {fingerprint}"
        )
        self.where = where
        self.fingerprint = fingerprint


class FingerprintChanged(ClientError):
    """A pinned server presents another certificate: refused, loudly."""


#: Refusals that trying again cannot change: a reconnecting client stops on these.
_FINAL_REFUSALS = frozenset(
    {
        ErrorCode.INVALID_NAME,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.PASSWORD_REQUIRED,
        ErrorCode.WRONG_PASSWORD,
        ErrorCode.ACCESS_DENIED,
    }
)


def worth_retrying(exc: ClientError) -> bool:
    """Whether a failed join may succeed later (the server is back, the old session gone).

    Unreachable servers, lost connections and refusals such as ``name_taken`` (our
    old session may not have timed out yet) are worth another try; an invalid name,
    another protocol version or something that is not a chatctl server are not.
    """
    if isinstance(exc, Unreachable | ConnectionLost):
        return True
    if isinstance(exc, Refused):
        return exc.code not in _FINAL_REFUSALS
    return False


def backoff(first: float = 1.0, factor: float = 2.0, cap: float = 30.0) -> Iterator[float]:
    """Seconds to wait before each reconnection attempt: 1, 2, 4, 8, 16, 30, 30, ..."""
    delay = first
    while True:
        yield min(delay, cap)
        delay = min(delay * factor, cap)
