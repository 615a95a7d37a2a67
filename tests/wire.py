"""A raw protocol connection for tests: JSON lines by hand, as a third-party client would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from tests.support import within

HOST = "127.0.0.1"


class Wire:
    """A raw connection that sends dicts and reads dicts, one JSON object per line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seen: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        self.writer.write(json.dumps(frame).encode() + b"\n")
        await within(self.writer.drain())

    async def read(self, timeout: float = 5.0) -> dict[str, Any] | None:
        line = await within(self.reader.readline(), timeout)
        if not line:
            return None
        frame: dict[str, Any] = json.loads(line)
        self.seen.append(frame)
        return frame

    async def until(self, type: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Read until a frame of ``type`` with ``fields``; the frames before it stay in seen."""
        while True:
            frame = await self.read(timeout)
            assert frame is not None, f"closed while waiting for {type} {fields}: {self.seen}"
            if frame["type"] == type and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives within ``seconds`` (for "nothing else came" checks)."""
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while (frame := await asyncio.wait_for(self.read(), seconds)) is not None:
                got.append(frame)
        return got

    @classmethod
    async def hello(cls, port: int, name: str, *, version: int = 2, **hello: Any) -> Wire:
        """Connect to ``port`` and send a ``hello`` (more fields in ``hello``)."""
        reader, writer = await within(asyncio.open_connection(HOST, port))
        conn = cls(reader, writer)
        await conn.send(type="hello", version=version, name=name, **hello)
        return conn

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def welcomed(conn: Wire, *rooms: str) -> list[dict[str, Any]]:
    """The welcome, then one ``room`` frame per room: the room frames."""
    welcome = await conn.read()
    assert welcome is not None, conn.seen
    assert welcome["type"] == "welcome", conn.seen
    return [await conn.until("room", room=room) for room in rooms]
