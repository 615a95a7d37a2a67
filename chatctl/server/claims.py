"""Claimed names: identity without accounts.

The first time a name joins a server that keeps history, the server makes a
secret (192 random bits) and gives it to that client once; from then on the name
can only be used with it. Only the secret's SHA-256 is kept, compared in constant
time; the secret never reaches a log or a refusal. Claims nobody has used for the
retention period expire.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import sqlite3
from enum import Enum

from chatctl.protocol import name_key
from chatctl.server.store import Store


class Verdict(Enum):
    FREE = "free"  # nobody has claimed the name
    OK = "ok"  # the right secret
    MISSING = "missing"  # claimed, and no secret given
    WRONG = "wrong"  # claimed, and another secret


def digest(secret: str) -> bytes:
    """What is kept of a secret: its SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


_digest = digest


class Claims:
    """The claims table of one server's file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn = store.conn
        #: In a cluster, the cluster's identity: its servers share their claims.
        self._identity: str | None = None

    @property
    def server_id(self) -> str:
        """Whose claims these are, for the client to key its secrets by."""
        return self._identity or self.store.server_id

    def share(self, identity: str) -> None:
        """From now on the claims are a cluster's, known by ``identity``."""
        self._identity = identity

    def adopt(self, name: str, hashed: bytes, now: float) -> None:
        """A claim made on another server of the cluster (the first one stays)."""
        self._write(
            "INSERT OR IGNORE INTO claims (key, name, hash, created, used) VALUES (?,?,?,?,?)",
            (name_key(name), name, hashed, now, now),
        )

    def drop(self, name: str) -> None:
        """The claim on ``name`` was forgotten on another server of the cluster."""
        self._drop([name_key(name)])

    def check(self, name: str, secret: str | None) -> Verdict:
        """Whether ``name`` may be used with ``secret``. A failing file claims nothing."""
        if self.store.error is not None:
            return Verdict.FREE
        try:
            row = self._conn.execute(
                "SELECT hash FROM claims WHERE key = ?", (name_key(name),)
            ).fetchone()
        except sqlite3.Error as exc:
            self.store.fail(f"cannot read {self.store.path}: {exc}")
            return Verdict.FREE
        if row is None:
            return Verdict.FREE
        if secret is None:
            return Verdict.MISSING
        return Verdict.OK if hmac.compare_digest(row[0], _digest(secret)) else Verdict.WRONG

    def claim(self, name: str, now: float) -> str | None:
        """Claim the free ``name``: its secret (None if the file cannot take it)."""
        secret = secrets.token_urlsafe(24)
        if not self._write(
            "INSERT OR IGNORE INTO claims (key, name, hash, created, used) VALUES (?,?,?,?,?)",
            (name_key(name), name, _digest(secret), now, now),
        ):
            return None
        return secret

    def used(self, name: str, now: float) -> None:
        """``name`` came or went: its claim does not expire before the retention after now."""
        self._write("UPDATE claims SET used = ? WHERE key = ?", (now, name_key(name)))

    def forget(self, name: str, secret: str) -> bool:
        """Drop the claim on ``name`` if ``secret`` is its secret."""
        if self.check(name, secret) is not Verdict.OK:
            return False
        return self._drop([name_key(name)])

    def expire(self, before: float, online: set[str]) -> int:
        """Drop claims unused since ``before``, but those of names online; how many."""
        if self.store.error is not None:
            return 0
        try:
            stale = self._conn.execute(
                "SELECT key FROM claims WHERE used < ?", (before,)
            ).fetchall()
        except sqlite3.Error as exc:
            self.store.fail(f"cannot read {self.store.path}: {exc}")
            return 0
        keys = [key for (key,) in stale if key not in online]
        return len(keys) if self._drop(keys) else 0

    def _drop(self, keys: list[str]) -> bool:
        """Drop the claims on ``keys``, with their read marks and private messages: the
        next to take the name must not read them."""
        if self.store.error is not None:
            return False
        rows = [(key,) for key in keys]
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany("DELETE FROM claims WHERE key = ?", rows)
            conn.executemany("DELETE FROM marks WHERE key = ?", rows)
            conn.executemany("DELETE FROM privates WHERE low = ?1 OR high = ?1", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.store.fail(f"cannot write to {self.store.path}: {exc}")
            return False
        return True

    def _write(self, statement: str, args: tuple[object, ...]) -> bool:
        if self.store.error is not None:
            return False
        try:
            self._conn.execute(statement, args)
        except sqlite3.Error as exc:
            self.store.fail(f"cannot write to {self.store.path}: {exc}")
            return False
        return True
