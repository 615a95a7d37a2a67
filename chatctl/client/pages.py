"""Paging back through a room's history: what ``tail`` and ``export`` read.

A ``history`` request answers with at most ``MAX_HISTORY`` messages; ``past`` asks page
after page, each before the oldest ``seq`` it has, until it has as many as it wants or
the server has no older ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from chatctl.client.core import DEFAULT_TIMEOUT, ChatClient
from chatctl.client.errors import ConnectionLost, Refused, Unreachable
from chatctl.protocol import MAX_HISTORY, Error, HistoryReply, Message, ServerFrame


@dataclass(frozen=True)
class Past:
    """A room's past messages, oldest first; ``more``: older ones match too (left out)."""

    messages: list[Message]
    more: bool


async def past(
    client: ChatClient,
    frames: AsyncIterator[ServerFrame],
    room: str,
    limit: int,
    since: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Past:
    """The newest ``limit`` messages of ``room`` at or after time ``since``, oldest first.

    ``frames`` is the client's receive loop (``aiter(client)``): frames other than the
    answers are passed over. A room we are not in is Refused (``not_in_room``); a page
    not answered within ``timeout`` seconds is Unreachable.
    """
    pages: list[list[Message]] = []
    wanted, before = limit, None
    more = False
    while wanted > 0:
        id = await client.history(room, min(wanted, MAX_HISTORY), before, since)
        try:
            reply = await asyncio.wait_for(_answer(frames, id, client.where), timeout)
        except TimeoutError:
            raise Unreachable(
                f"{client.where} did not answer a history request within {timeout:g} s"
            ) from None
        pages.append(reply.messages)
        wanted -= len(reply.messages)
        more = reply.more
        if not reply.more or not reply.messages:
            break
        before = reply.messages[0].seq
    return Past([m for page in reversed(pages) for m in page], more)


async def _answer(frames: AsyncIterator[ServerFrame], id: str, where: str) -> HistoryReply:
    async for frame in frames:
        match frame:
            case HistoryReply(id=answered) if answered == id:
                return frame
            case Error(id=refused, code=code, message=message) if refused == id:
                raise Refused(code, message)
    raise ConnectionLost(f"{where} closed the connection before it answered a history request")
