"""The past, on request: ``history`` (of a room, or of a conversation), ``unread``, ``search``.

History is read on the loop: indexed pages of at most ``MAX_HISTORY`` rows. A search
runs on the search index's thread (``chatctl.server.search``) and its answer comes
back to the loop, so a slow one delays nobody. Only members read: a room's past to
those in it, a conversation's to its two claimed names.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import Future
from typing import TYPE_CHECKING

from chatctl.protocol import (
    MAX_SEARCH_BYTES,
    ErrorCode,
    HistoryReply,
    HistoryRequest,
    PrivateHistoryReply,
    ProtocolError,
    SearchReply,
    SearchRequest,
    UnreadReply,
    check_name,
    check_room,
    name_key,
)
from chatctl.server.search import Found, Query

if TYPE_CHECKING:  # the hub imports this module's importer
    from chatctl.server.hub import Hub
    from chatctl.server.member import Member
    from chatctl.server.room import Room

_NO_HISTORY = ProtocolError(ErrorCode.NO_HISTORY, "this server keeps no history (--no-history)")


def in_room(member: Member, name: str) -> Room:
    """The room ``name`` that ``member`` is in (``not_in_room`` if none)."""
    room = member.rooms.get(check_room(name))
    if room is None:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "you are not in that room")
    return room


def history(hub: Hub, member: Member, frame: HistoryRequest) -> None:
    if frame.to is not None:
        if frame.room is not None:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "history: a room or a name, not both")
        return _conversation(hub, member, frame.to, frame)
    if frame.room is None:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "history: which room (or to whom)?")
    room = in_room(member, frame.room)
    past, more = (
        hub.history.page(room.name, frame.limit, frame.before, frame.since)
        if hub.history
        else ([], False)
    )
    member.tell(HistoryReply(room.name, past, more, frame.id))


def _conversation(hub: Hub, member: Member, to: str, frame: HistoryRequest) -> None:
    """``member``'s private messages with ``to``, kept only between claimed names."""
    other = check_name(to)
    if frame.before is not None:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "history: before is for rooms; use since")
    mine = hub.reader(member)
    if hub.history is None or mine is None:
        raise _NO_HISTORY
    if not hub.config.private_history:
        raise ProtocolError(
            ErrorCode.NO_HISTORY, "this server keeps no private messages (--no-pm-history)"
        )
    past, more = hub.history.privates((mine, name_key(other)), frame.limit, frame.since)
    member.tell(PrivateHistoryReply(other, past, more, frame.id))


def unread(hub: Hub, member: Member, id: str | None) -> None:
    reader = hub.reader(member)
    counts = hub.history.unread(reader) if reader and hub.history else {}
    member.tell(UnreadReply(counts, id))


def search(hub: Hub, member: Member, frame: SearchRequest) -> None:
    """Ask the index's thread; the answer is sent when it comes (``_answer``)."""
    words = frame.words.strip()
    if not words:
        raise ProtocolError(ErrorCode.EMPTY_MESSAGE, "search for at least one word")
    if len(words.encode()) > MAX_SEARCH_BYTES:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LONG, f"a search is at most {MAX_SEARCH_BYTES} bytes"
        )
    if hub.search is None:
        raise _NO_HISTORY
    key = hub.reader(member) if hub.config.private_history else None
    future = hub.search.search(Query(words, list(member.rooms), key, frame.limit))
    loop = asyncio.get_running_loop()
    future.add_done_callback(lambda done: _later(loop, hub, member, frame, done))


def _later(
    loop: asyncio.AbstractEventLoop,
    hub: Hub,
    member: Member,
    frame: SearchRequest,
    done: Future[Found],
) -> None:
    """On the index's thread: hand the answer to the loop (unless it has stopped)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_answer, hub, member, frame, done)


def _answer(hub: Hub, member: Member, frame: SearchRequest, done: Future[Found]) -> None:
    if hub.member(member.name) is not member:
        return  # gone meanwhile
    try:
        found = done.result()
    except sqlite3.Error as exc:
        error = ProtocolError(ErrorCode.NO_HISTORY, f"search is not available: {exc}")
        member.session.send_error(error, frame.id)
        return
    reply = SearchReply(frame.words, found.messages, found.private, found.more, frame.id)
    member.tell(reply)
