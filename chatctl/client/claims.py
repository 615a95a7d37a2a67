"""The client's claim secrets: ``claims.json`` in the config folder, mode 0600.

A server that keeps history gives a name's secret once, the first time the name
joins it; this file keeps it, keyed by the server's own identity (``server_id``,
kept in the server's database) and the name, so a server that moves to another
address or port is still recognised. The address a server was last seen at is
only a hint for which secret to present first: a server that does not know it
answers ``name_claimed`` with its identity, and the client tries the right one.

Many clients may run at once (a person in three panes, bots): every change is a
read-modify-write under an exclusive ``flock``, written to a temporary file and
renamed over the old one, so no change is lost and no reader sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chatctl.protocol import name_key

FILE_NAME = "claims.json"


class ClaimBook:
    """Secrets by server identity and name; which identity was last seen at which address."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> ClaimBook:
        from chatctl.tls import config_dir

        return cls(config_dir() / FILE_NAME)

    def server_at(self, where: str) -> str | None:
        """The identity of the server last seen at ``where`` (``host:port``)."""
        server_id = self._read().get("servers", {}).get(where)
        return server_id if isinstance(server_id, str) else None

    def secret(self, server_id: str | None, name: str) -> str | None:
        if server_id is None:
            return None
        entry = self._read().get("claims", {}).get(server_id, {}).get(name_key(name))
        secret = entry.get("secret") if isinstance(entry, dict) else None
        return secret if isinstance(secret, str) else None

    def seen(self, where: str, server_id: str) -> None:
        """The server at ``where`` is ``server_id`` (written only when that changes)."""
        if self.server_at(where) != server_id:
            self._change(lambda data: data.setdefault("servers", {}).update({where: server_id}))

    def keep(self, where: str, server_id: str, name: str, secret: str) -> None:
        def change(data: dict[str, Any]) -> None:
            data.setdefault("servers", {})[where] = server_id
            names = data.setdefault("claims", {}).setdefault(server_id, {})
            names[name_key(name)] = {"name": name, "secret": secret}

        self._change(change)

    def drop(self, server_id: str, name: str) -> None:
        def change(data: dict[str, Any]) -> None:
            data.get("claims", {}).get(server_id, {}).pop(name_key(name), None)

        self._change(change)

    # the file

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            return {}  # damaged: as if empty, and the next change rewrites it
        return data if isinstance(data, dict) else {}

    def _change(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._locked():
            data = self._read()
            change(data)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".claims-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
