"""Server addresses as people type them: ``HOST:PORT``, ``HOST``, ``[v6]:PORT``, and lists.

Light (no imports beyond ``re`` and ``dataclasses``): ``--server`` and
``CHATCTL_SERVERS`` are parsed while the command line is read, so a bad one is a
usage error before anything heavy loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_BRACKETED = re.compile(r"\[([^\[\]]*)\](?::(.*))?")
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class Address:
    """One server: a host name or IP address, and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        """``host:port``; an IPv6 address in brackets, as it is typed."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int) -> Address:
    """``text`` as an Address (``HOST`` alone: ``default_port``); ValueError for a person."""
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed is not None:
        host, port = bracketed.group(1), bracketed.group(2)
        if ":" not in host:
            raise ValueError(f"{text!r}: brackets are for an IPv6 address, as in [::1]:5000")
    elif text.count(":") > 1:
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, as in [{text}]")
    else:
        host, colon, rest = text.partition(":")
        port = rest if colon else None
    if not host or any(c.isspace() or c in "[]/" for c in host):
        raise ValueError(f"{text!r} is not HOST, HOST:PORT or [IPv6]:PORT")
    return Address(host, default_port if port is None else _port(text, port))


def _port(text: str, port: str) -> int:
    if not port.isdigit() or not port.isascii() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(port)


def parse_servers(texts: Iterable[str], default_port: int) -> list[Address]:
    """Every address in ``texts``, each a comma- or space-separated list; duplicates once."""
    found: dict[Address, None] = {}
    for text in texts:
        for item in _SEPARATORS.split(text):
            if item:
                found.setdefault(parse_address(item, default_port))
    return list(found)
