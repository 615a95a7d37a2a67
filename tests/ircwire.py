"""A raw IRC connection for tests: lines by hand, as irctest drives a server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from tests.support import within


@dataclass(frozen=True)
class Msg:
    """One line from the server, split as RFC 1459 says."""

    raw: str
    tags: dict[str, str]
    source: str
    command: str
    params: list[str]

    @property
    def nick(self) -> str:
        return self.source.split("!")[0]


def split(raw: str) -> Msg:
    tags: dict[str, str] = {}
    rest = raw
    if rest.startswith("@"):
        head, rest = rest[1:].split(" ", 1)
        for item in head.split(";"):
            key, _, value = item.partition("=")
            tags[key] = value
    source = ""
    if rest.startswith(":"):
        source, rest = rest[1:].split(" ", 1)
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    words = rest.split()
    params = words[1:] + ([trailing] if trailing is not None else [])
    return Msg(raw, tags, source, words[0], params)


class Irc:
    """A raw IRC client connection: send lines, read lines (every line read stays in seen)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seen: list[Msg] = []

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Irc:
        reader, writer = await within(asyncio.open_connection(host, port))  # type: ignore[misc]
        return cls(reader, writer)

    @classmethod
    async def registered(cls, port: int, nick: str, *caps: str, password: str | None = None) -> Irc:
        """Connected, capabilities asked for, registered, welcomed (001-005 and 422 read)."""
        irc = await cls.connect(port)
        if caps:
            await irc.send("CAP LS 302")
        if password is not None:
            await irc.send(f"PASS {password}")
        await irc.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} tested")
        if caps:
            await irc.until("CAP", lambda m: m.params[1] == "LS")
            await irc.send(f"CAP REQ :{' '.join(caps)}")
            ack = await irc.until("CAP")
            assert ack.params[1] == "ACK", ack.raw
            await irc.send("CAP END")
        await irc.until("422")
        return irc

    async def send(self, *lines: str) -> None:
        self.writer.write(b"".join(line.encode() + b"\r\n" for line in lines))
        await within(self.writer.drain())

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await within(self.writer.drain())

    async def read(self, timeout: float = 5.0) -> Msg | None:
        line = await within(self.reader.readline(), timeout)
        if not line:
            return None
        assert line.endswith(b"\r\n"), line
        msg = split(line[:-2].decode())
        self.seen.append(msg)
        return msg

    async def until(self, command: str, where: object = None, timeout: float = 5.0) -> Msg:
        """Read until a line of ``command`` (and ``where(msg)``, if given)."""
        while True:
            msg = await self.read(timeout)
            assert msg is not None, f"closed while waiting for {command}: {self.seen}"
            if msg.command == command and (where is None or where(msg)):  # type: ignore[operator]
                return msg

    async def quiet(self, wait: float = 0.3) -> list[Msg]:
        """Everything that comes within ``wait`` seconds of silence (for "nothing else")."""
        got = []
        with contextlib.suppress(TimeoutError):
            while (msg := await asyncio.wait_for(self.read(wait), wait)) is not None:
                got.append(msg)
        return got

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await within(self.writer.wait_closed())
