"""The client's plain requests: a frame with a new id, sent; what comes back arrives in
the receive loop (``who_reply``, the room's events, or an ``error`` with that id).

A mixin of ``ChatClient``, which says how a request is sent (``_request``); the ones
with state of their own (``say``, ``join_room``, ``nick``) stay with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from chatctl.protocol import (
    Away,
    BansRequest,
    ClientFrame,
    Do,
    Hand,
    HandsRequest,
    HistoryRequest,
    Moderate,
    RoomsRequest,
    SearchRequest,
    Topic,
    UnreadRequest,
    Whois,
    WhoRequest,
    check_name,
    check_reason,
    check_room,
    check_topic,
)


class Requests:
    """Requests that need nothing but an id."""

    async def _request(self, make: Callable[[str], ClientFrame]) -> str:
        """Send the frame ``make`` builds around a new id; the id."""
        raise NotImplementedError

    async def away(self, text: str | None) -> str:
        """Away with ``text``, or back (None)."""
        return await self._request(lambda id: Away(text, id))

    async def set_topic(self, room: str, text: str | None) -> str:
        """Set ``room``'s topic, or clear it (None); operators only (the event comes back)."""
        room = check_room(room)
        text = check_topic(text)
        return await self._request(lambda id: Topic(room, text, id))

    async def moderate(
        self,
        room: str,
        do: Do,
        name: str | None = None,
        reason: str | None = None,
        seconds: int | None = None,
        *,
        server: bool = False,
    ) -> str:
        """An operator's action on ``name`` in ``room`` (the room is told, or an error
        comes); ``server``: a ban of the whole server."""
        room, reason = check_room(room), check_reason(reason)
        frame = functools.partial(Moderate, room, do, name, reason, seconds, server)
        return await self._request(lambda id: frame(id=id))

    async def hand(self, room: str, *, down: bool = False) -> str:
        """Raise (or lower) our hand in a moderated ``room``."""
        room = check_room(room)
        return await self._request(lambda id: Hand(room, down, id))

    async def hands(self, room: str) -> str:
        room = check_room(room)
        return await self._request(lambda id: HandsRequest(room, id))

    async def bans(self, room: str) -> str:
        room = check_room(room)
        return await self._request(lambda id: BansRequest(room, id))

    async def list_rooms(self) -> str:
        return await self._request(RoomsRequest)

    async def who(self, room: str) -> str:
        room = check_room(room)
        return await self._request(lambda id: WhoRequest(room, id))

    async def whois(self, name: str) -> str:
        name = check_name(name)
        return await self._request(lambda id: Whois(name, id))

    async def history(
        self, room: str, limit: int = 50, before: int | None = None, since: float | None = None
    ) -> str:
        """Ask for past messages of ``room`` (a ``history_reply`` comes back with the id)."""
        room = check_room(room)
        return await self._request(lambda id: HistoryRequest(room, limit, before, since, id))

    async def conversation(self, name: str, limit: int = 50, since: float | None = None) -> str:
        """Ask for our private messages with ``name`` (a ``private_history`` comes back)."""
        name = check_name(name)
        return await self._request(lambda id: HistoryRequest(None, limit, None, since, id, name))

    async def search(self, words: str, limit: int = 20) -> str:
        """Ask for the newest messages with all of ``words`` (a ``search_reply`` comes back)."""
        return await self._request(lambda id: SearchRequest(words, limit, id))

    async def unread(self) -> str:
        """Ask how many messages are new in each room since our read marks."""
        return await self._request(UnreadRequest)
