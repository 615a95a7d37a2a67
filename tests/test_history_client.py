"""The client side of history: the core over a real in-process server and a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatctl.client import ChatClient
from chatctl.protocol import MAX_HISTORY, Joined, Message, RoomState, ServerFrame
from tests.conftest import RecordingServer
from tests.support import within

HOST = "127.0.0.1"
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RecordingServer]:
    """An in-process server keeping its history in a real SQLite file."""
    async with RecordingServer(history=str(tmp_path / "h.sqlite3")) as srv:
        yield srv


async def next_frame(frames: AsyncIterator[ServerFrame]) -> ServerFrame:
    frame: ServerFrame = await within(anext(frames))  # type: ignore[assignment]
    return frame


async def next_message(frames: AsyncIterator[ServerFrame]) -> Message:
    """The next message, past join notices."""
    while True:
        frame = await next_frame(frames)
        if isinstance(frame, Message):
            return frame
        assert isinstance(frame, Joined | RoomState), frame


async def say_all(client: ChatClient, texts: list[str], room: str | None = None) -> list[Message]:
    """Send ``texts`` and return them as the server relayed them (every one confirmed)."""
    frames = aiter(client)
    for text in texts:
        await client.say(text, room)
    relayed = [await next_message(frames) for _ in texts]
    assert not client.unconfirmed
    return relayed


async def test_join_with_history_gets_the_last_n_oldest_first(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice"))
    bob: ChatClient | None = None
    try:
        sent = await say_all(alice, [f"m{i}" for i in range(8)])
        bob = await within(ChatClient.join(HOST, server.port, "bob", history=5))
        [state] = bob.joined
        assert state.history == 5
        assert state.seq >= sent[-1].seq
        frames = aiter(bob)
        replayed = [await next_frame(frames) for _ in range(5)]
        assert all(isinstance(f, Message) and f.history for f in replayed), replayed
        assert (
            [(m.seq, m.text, m.name, m.id) for m in replayed]
            == [  # type: ignore[union-attr]
                (m.seq, m.text, m.name, m.id) for m in sent[-5:]
            ]
        )
        # Then live events: bob's own join, and a new message, not marked as history.
        await alice.say("live")
        live = await next_message(frames)
        assert (live.text, live.history) == ("live", False)
        assert bob.rooms.rooms["#lobby"].seq == live.seq  # a message's seq counts as seen
    finally:
        for client in (alice, bob):
            if client is not None:
                await client.close()


async def test_no_history_asked_none_replayed(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice"))
    bob: ChatClient | None = None
    try:
        await say_all(alice, ["before"])
        bob = await within(ChatClient.join(HOST, server.port, "bob"))
        assert bob.joined[0].history == 0
        await alice.say("after")
        assert (await next_message(aiter(bob))).text == "after"
    finally:
        for client in (alice, bob):
            if client is not None:
                await client.close()


async def test_join_room_asks_for_that_rooms_history(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice", rooms=["#ops"]))
    bob = await within(ChatClient.join(HOST, server.port, "bob"))
    try:
        sent = await say_all(alice, ["one", "two", "three"], "#ops")
        frames = aiter(bob)
        await bob.join_room("#ops", history=2)
        while not isinstance(state := await next_frame(frames), RoomState):
            pass
        assert (state.room, state.history) == ("#ops", 2)
        replayed = [await next_frame(frames) for _ in range(2)]
        assert replayed == [
            Message(m.seq, m.time, m.name, m.text, m.room, m.id, history=True) for m in sent[1:]
        ]
    finally:
        await alice.close()
        await bob.close()


async def test_replayed_own_messages_confirm_nothing(server: RecordingServer) -> None:
    first = await within(ChatClient.join(HOST, server.port, "alice"))
    try:
        old = await say_all(first, ["said before"])
        prefix = first.unconfirmed.new_id().rsplit(".", 1)[0]
    finally:
        await first.leave()
        await within(first.wait_ended(5))
        await first.close()
    again = await within(ChatClient.join(HOST, server.port, "alice", history=10))
    try:
        # Ids are random per connection, so no replayed id could match a new one anyway;
        # this connection is made to reuse the old ones, so only the rule itself can hold.
        again.unconfirmed._prefix = prefix
        again.unconfirmed._count = 0
        id = await again.say("said now")
        assert id == old[0].id
        frames = aiter(again)
        replayed = await next_frame(frames)
        assert isinstance(replayed, Message)
        assert (replayed.text, replayed.history, replayed.id) == ("said before", True, id)
        assert list(again.unconfirmed) == ["said now"]  # still waiting for its own echo
        live = await next_message(frames)
        assert (live.text, live.history) == ("said now", False)
        assert not again.unconfirmed
    finally:
        await again.close()


async def test_a_history_count_out_of_range_is_refused_before_sending(
    server: RecordingServer,
) -> None:
    with pytest.raises(ValueError, match="history"):
        await within(ChatClient.join(HOST, server.port, "alice", history=MAX_HISTORY + 1))
    alice = await within(ChatClient.join(HOST, server.port, "alice", history=MAX_HISTORY))
    try:
        with pytest.raises(ValueError, match="history"):
            await alice.join_room("#ops", history=-1)
        assert alice.rooms.current == "#lobby"  # nothing was sent, nothing switched
    finally:
        await alice.close()
