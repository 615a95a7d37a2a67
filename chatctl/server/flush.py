"""The loop-iteration flush: what an iteration queued is kept, then written, once.

Rooms and sessions say they have something to write; one callback at the end of the
iteration commits the history (so nobody sees a message the file does not hold, and read
marks move with it), then writes every room's broadcasts, then every session's own
frames. Batching per iteration is what lets a room encode a broadcast once and join a
member's frames into one write (docs/design.md, "Fan-out through one room outbox").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatctl.server.records import Records
    from chatctl.server.room import Room
    from chatctl.server.session import Session


class Flush:
    """The rooms and sessions with something to write this iteration, and the one flush."""

    def __init__(self, records: Records) -> None:
        self._records = records
        self._rooms: list[Room] = []
        self._sessions: list[Session] = []
        self._scheduled = False

    def room(self, room: Room) -> None:
        """``room`` queued a broadcast."""
        self._rooms.append(room)
        self.touch()

    def session(self, session: Session) -> None:
        """``session`` queued a frame of its own."""
        self._sessions.append(session)
        self.touch()

    def touch(self) -> None:
        """Something to commit (a read mark, the cluster's cursor), perhaps nothing to send."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def early(self) -> None:
        """A session writes before the flush (it is closing): what it shows is kept first."""
        if self._records.history is not None:
            self._keep(self._rooms)

    def _run(self) -> None:
        self._scheduled = False
        rooms, self._rooms = self._rooms, []
        if self._records.history is not None:
            self._keep(rooms)  # in the file before anyone sees it (and the read marks)
        for room in rooms:
            room.flush()
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.flush()

    def _keep(self, rooms: list[Room]) -> None:
        history = self._records.history
        assert history is not None  # noqa: S101  callers check
        for room in rooms:
            history.mark(room.name, room.seq)
        history.commit()
