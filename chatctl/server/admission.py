"""Who may come in: the access list, the per-address gate, capacity, the password.

Bookkeeping only: it answers with a ``Refusal`` (or None) and never touches a
connection, so the session decides how to say no (a frame on a plain port, a
bare close before a TLS handshake) and the hub counts and logs it.
"""

from __future__ import annotations

import hmac
import time

from chatctl.limits import AccessList, AddressGate, FailureThrottle, Refusal, parse_networks
from chatctl.protocol import ErrorCode
from chatctl.server.config import ServerConfig


class Admission:
    """The gates a connection passes: first at accept, then at ``hello`` or ``status``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.access = AccessList(parse_networks(config.allow), parse_networks(config.deny))
        self.gate = AddressGate(
            config.max_per_address, config.max_new_per_minute, config.limit_loopback
        )
        self.password_failures = FailureThrottle(config.max_password_failures)
        #: Wrong claim secrets, throttled as wrong passwords are.
        self.secret_failures = FailureThrottle(config.max_password_failures)
        self.stopping = False

    def admit(self, host: str, connections: int) -> Refusal | None:
        """A new connection from ``host`` while ``connections`` are open: in, or why not.

        An admitted connection holds a place in the per-address gate until ``release``.
        """
        if not self.access.permits(host):
            return Refusal(ErrorCode.ACCESS_DENIED, "your address may not use this server")
        if self.stopping:
            return Refusal(ErrorCode.SERVER_FULL, "the server is shutting down")
        if connections >= self.config.max_clients:
            return Refusal(
                ErrorCode.SERVER_FULL,
                f"the server is full (at most {self.config.max_clients} connections)",
            )
        return self.gate.admit(host, time.monotonic())

    def stop(self) -> None:
        """The server is shutting down: every new connection is refused from now on."""
        self.stopping = True

    def release(self, host: str) -> None:
        self.gate.release(host)

    def check_password(self, host: str, password: str | None) -> Refusal | None:
        """The room password, compared in constant time: None if it is right (or not needed).

        Neither the password tried nor the right one ever reaches a refusal or the log.
        """
        expected = self.config.password
        if expected is None:
            return None
        now = time.monotonic()
        wait = self.password_failures.blocked(host, now)
        if wait is not None:
            return Refusal(
                ErrorCode.THROTTLED,
                f"too many wrong passwords from your address; try again in {wait:.0f} s",
                max(1, int(wait * 1000)),
            )
        if password is None:
            return Refusal(ErrorCode.PASSWORD_REQUIRED, "this server needs a password")
        if hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8")):
            return None
        self.password_failures.fail(host, now)
        return Refusal(ErrorCode.WRONG_PASSWORD, "wrong password")

    def secret_throttled(self, host: str) -> Refusal | None:
        """Whether ``host`` tried too many wrong claim secrets lately (checked before comparing)."""
        wait = self.secret_failures.blocked(host, time.monotonic())
        if wait is None:
            return None
        return Refusal(
            ErrorCode.THROTTLED,
            f"too many wrong secrets from your address; try again in {wait:.0f} s",
            max(1, int(wait * 1000)),
        )

    def secret_failed(self, host: str) -> None:
        self.secret_failures.fail(host, time.monotonic())

    def prune(self, now: float) -> None:
        """Forget addresses that have been quiet for the limits' windows."""
        self.gate.prune(now)
        self.password_failures.prune(now)
        self.secret_failures.prune(now)
