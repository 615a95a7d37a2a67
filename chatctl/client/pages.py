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
    answers are passed over, but for the room's new messages, which come after the pages
    (one said while the older pages were asked for is in none of them). A room we are
    not in is Refused (``not_in_room``); a page not answered within ``timeout`` seconds
    is Unreachable.
    """
    pages: list[list[Message]] = []
    live: list[Message] = []
    wanted, before = limit, None
    more = False
    while wanted > 0:
        id = await client.history(room, min(wanted, MAX_HISTORY), before, since)
        try:
            answer = _answer(frames, id, client.where, room, live)
            reply = await asyncio.wait_for(answer, timeout)
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
    messages = [m for page in reversed(pages) for m in page]
    newest = messages[-1].seq if messages else 0
    return Past(messages + [m for m in live if m.seq > newest], more)


async def _answer(
    frames: AsyncIterator[ServerFrame], id: str, where: str, room: str, live: list[Message]
) -> HistoryReply:
    """The answer to request ``id``; ``room``'s new messages meanwhile go into ``live``."""
    async for frame in frames:
        match frame:
            case HistoryReply(id=answered) if answered == id:
                return frame
            case Message(room=said, history=False) if said == room:
                live.append(frame)
            case Error(id=refused, code=code, message=message) if refused == id:
                raise Refused(code, message)
    raise ConnectionLost(f"{where} closed the connection before it answered a history request")
