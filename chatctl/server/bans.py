"""Bans: who may not come into a room, or onto the server, until when.

A ban names a name (its key), an address or network, or both: banning someone who
is here bans their name and the address they came from, so they cannot come back
under another name from there. Loopback addresses are left out of that (on a shared
machine everyone has the same one) unless ``--limit-loopback``. With history, bans
are kept in the file and outlive a restart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sqlite3
from dataclasses import dataclass

from chatctl.protocol import BanInfo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``Ban.room`` of a ban of the whole server.
SERVER = ""


@dataclass(frozen=True)
class Ban:
    room: str  # SERVER: every room
    key: str | None
    network: Network | None
    until: float | None
    by: str
    reason: str | None
    #: What it bans, as told ("ann", "10.0.0.0/24").
    shown: str

    def covers(self, key: str, host: str | None) -> bool:
        if key == self.key:
            return True
        if self.network is None or host is None:
            return False
        try:
            return ipaddress.ip_address(host) in self.network
        except ValueError:
            return False

    def info(self) -> BanInfo:
        return BanInfo(
            self.by,
            self.shown if self.key is not None else None,
            str(self.network) if self.network is not None else None,
            self.until,
            self.reason,
            self.room == SERVER,
        )


def parse_network(text: str) -> Network | None:
    """``10.0.0.7`` or ``10.0.0.0/24`` as a network; None if ``text`` is not one (a name)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class Bans:
    """Every ban of one server; kept in its history file when there is one."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self._conn = conn
        self._bans: list[Ban] = []
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._bans = [_ban(row) for row in conn.execute(_SELECT).fetchall()]

    def add(self, ban: Ban) -> None:
        """Ban; a new ban of the same thing in the same place replaces the old one."""
        self._drop(ban.room, ban.shown)
        self._bans.append(ban)
        self._write(
            "INSERT INTO bans (room, key, network, until, by, reason, shown)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                ban.room,
                ban.key,
                str(ban.network) if ban.network is not None else None,
                ban.until,
                ban.by,
                ban.reason,
                ban.shown,
            ),
        )

    def lift(self, room: str, shown: str) -> bool:
        """Lift the ban of ``shown`` (a name, in any case, or a network) in ``room``."""
        return self._drop(room, shown)

    def find(self, room: str, key: str, host: str | None, now: float) -> Ban | None:
        """The ban that keeps ``key`` from ``host`` out of ``room`` (SERVER: the server)."""
        self._expire(now)
        return next((b for b in self._bans if b.room == room and b.covers(key, host)), None)

    def of(self, room: str, now: float) -> list[Ban]:
        """The bans in force in ``room``, oldest first."""
        self._expire(now)
        return [b for b in self._bans if b.room == room]

    def _drop(self, room: str, shown: str) -> bool:
        wanted = shown.lower()
        kept = [b for b in self._bans if not (b.room == room and b.shown.lower() == wanted)]
        dropped = len(kept) != len(self._bans)
        self._bans = kept
        if dropped:
            self._write("DELETE FROM bans WHERE room = ? AND lower(shown) = ?", (room, wanted))
        return dropped

    def _expire(self, now: float) -> None:
        if any(b.until is not None and b.until <= now for b in self._bans):
            self._bans = [b for b in self._bans if b.until is None or b.until > now]
            self._write("DELETE FROM bans WHERE until IS NOT NULL AND until <= ?", (now,))

    def _write(self, sql: str, values: tuple[object, ...]) -> None:
        """Outside the history's batch (a ban is rare): a transaction of its own."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):  # kept in memory either way
                self._conn.execute(sql, values)


_SELECT = "SELECT room, key, network, until, by, reason, shown FROM bans ORDER BY rowid"


def _ban(row: tuple[str, str | None, str | None, float | None, str, str | None, str]) -> Ban:
    room, key, network, until, by, reason, shown = row
    return Ban(room, key, parse_network(network) if network else None, until, by, reason, shown)
