"""Read marks: how far the user has been shown each room, told to the server lazily.

A busy room costs one ``read`` frame per room per ``READ_DELAY``, not one per
message; whatever is pending goes out when the client leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chatctl.protocol import Read, encode

#: Seconds a moved read mark waits before it is sent.
READ_DELAY = 2.0


class ReadMarks:
    """The last ``seq`` shown per room, and the rooms whose mark the server has not heard."""

    def __init__(self, write: Callable[[bytes], None], delay: float = READ_DELAY) -> None:
        self._write = write
        self._delay = delay
        self._seen: dict[str, int] = {}
        self._unsent: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def shown(self, room: str, seq: int) -> None:
        if seq <= self._seen.get(room, 0):
            return
        self._seen[room] = seq
        self._unsent.add(room)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.send)

    def forget(self, room: str) -> None:
        """We are out of ``room`` (kicked, banned): a ``read`` for it now would be refused."""
        self._unsent.discard(room)
        self._seen.pop(room, None)

    def send(self) -> None:
        """Tell the server every mark not told yet (now: the timer, or leaving)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for room in sorted(self._unsent):
            self._write(encode(Read(room, self._seen[room])))
        self._unsent.clear()
