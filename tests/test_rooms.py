"""Protocol version 2 against a real server: rooms, private messages, nicks, away, ids.

Raw sockets speak JSON lines by hand (as a third-party client would, from
docs/protocol.md); ChatClient is the core our own UI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chatctl.client import ChatClient
from chatctl.protocol import Message, Private
from tests.support import async_wait_until, within
from tests.wire import Wire, welcomed

HOST = "127.0.0.1"


Open = Callable[..., Awaitable[Wire]]


@pytest.fixture
async def wire(server: Any) -> AsyncIterator[Open]:
    """``await wire("alice", rooms=["#ops"])``: a raw version-2 member (version=1: version 1)."""
    opened: list[Wire] = []

    async def open_(name: str, *, version: int = 2, **hello: Any) -> Wire:
        reader, writer = await within(asyncio.open_connection(HOST, server.port))  # type: ignore[misc]
        conn = Wire(reader, writer)
        opened.append(conn)
        await conn.send(type="hello", version=version, name=name, **hello)
        return conn

    yield open_
    for conn in opened:
        conn.writer.close()
        with contextlib.suppress(OSError):
            await conn.writer.wait_closed()


# --------------------------------------------------------------------------- rooms


async def test_a_message_in_one_room_never_reaches_another(wire: Open) -> None:
    alice = await wire("alice", rooms=["#ops"])
    bob = await wire("bob", rooms=["#OPS"])  # rooms are case-insensitive
    carol = await wire("carol")  # no rooms named: #lobby
    await welcomed(alice, "#ops")
    [ops] = await welcomed(bob, "#ops")
    assert ops["users"] == ["alice", "bob"]
    await welcomed(carol, "#lobby")

    await alice.send(type="say", room="#ops", text="deploy at 10", id="a1")
    relayed = await bob.until("message")
    assert (relayed["room"], relayed["name"], relayed["text"]) == ("#ops", "alice", "deploy at 10")
    assert relayed["id"] == "a1"
    echo = await alice.until("message")
    assert echo["seq"] == relayed["seq"]
    await carol.send(type="say", text="anyone?")  # no room: #lobby
    mine = await carol.until("message")
    assert mine["room"] == "#lobby"
    assert all(f.get("room") != "#ops" for f in carol.seen + await carol.quiet())


async def test_every_room_is_one_order_for_all_its_members(wire: Open) -> None:
    """Three senders in two shared rooms: each room's seq runs 1, 2, 3... for everyone."""
    names = ["ann", "ben", "cat"]
    conns = [await wire(n, rooms=["#a", "#b"]) for n in names]
    for conn in conns:
        await welcomed(conn, "#a", "#b")
    for i in range(20):
        for conn in conns:
            await conn.send(type="say", room="#a" if i % 2 else "#b", text=f"{i}")
    per_member = []
    for conn in conns:
        events: dict[str, list[tuple[int, str, str]]] = {"#a": [], "#b": []}
        while sum(len(v) for v in events.values()) < 60:
            frame = await conn.read()
            assert frame is not None
            if frame["type"] == "message":
                events[frame["room"]].append((frame["seq"], frame["name"], frame["text"]))
        per_member.append(events)
    for room in ("#a", "#b"):
        first = per_member[0][room]
        seqs = [seq for seq, _, _ in first]
        assert seqs == list(range(seqs[0], seqs[0] + 30)), seqs  # no gap, no repeat
        assert all(m[room] == first for m in per_member)  # the same order for everyone


async def test_join_part_and_a_room_is_forgotten_when_empty(wire: Open, server: Any) -> None:
    alice = await wire("alice", rooms=[])
    await alice.until("welcome")
    await alice.send(type="join", room="#ops", id="j1")
    state = await alice.until("room", room="#ops")
    assert (state["seq"], state["users"], state["online"]) == (0, ["alice"], 1)
    own = await alice.until("join", room="#ops")
    assert (own["name"], own["seq"]) == ("alice", 1)
    assert "#ops" in server.hub.rooms

    bob = await wire("bob", rooms=["#ops"])
    await welcomed(bob, "#ops")
    await alice.send(type="part", room="#ops")
    parted = await bob.until("part", room="#ops")
    assert (parted["name"], parted["seq"]) == ("alice", 3)
    assert (await alice.until("part", room="#ops"))["seq"] == 3  # alice is told too
    await bob.send(type="part", room="#ops")
    await bob.until("part", room="#ops", name="bob")
    await async_wait_until(lambda: "#ops" not in server.hub.rooms, what="#ops forgotten")

    await alice.send(type="say", room="#ops", text="still there?", id="s1")
    error = await alice.until("error")
    assert (error["code"], error["id"], error["room"]) == ("not_in_room", "s1", "#ops")


async def test_room_rules_and_limits_get_their_codes(wire: Open, server: Any) -> None:
    alice = await wire("alice")
    await welcomed(alice, "#lobby")
    cases = [
        ({"type": "join", "room": "ops"}, "invalid_room"),
        ({"type": "join", "room": "#" + "x" * 31}, "invalid_room"),
        ({"type": "join", "room": "#lobby"}, "already_in_room"),
        ({"type": "part", "room": "#nowhere"}, "not_in_room"),
        ({"type": "say", "room": "#nowhere", "text": "x"}, "not_in_room"),
        ({"type": "msg", "to": "nobody", "text": "x"}, "no_such_user"),
        ({"type": "nick", "name": "has space"}, "invalid_name"),
    ]
    for n, (frame, code) in enumerate(cases):
        await alice.send(**frame, id=f"e{n}")
        error = await alice.until("error")
        assert (error["code"], error["id"]) == (code, f"e{n}"), frame
    limit = server.hub.config.max_rooms
    for n in range(limit - 1):
        await alice.send(type="join", room=f"#r{n}")
    await alice.send(type="join", room="#one-too-many", id="full")
    assert (await alice.until("error", id="full"))["code"] == "too_many_rooms"
    assert len(server.hub.members["alice"].rooms) == limit
    await alice.send(type="say", text="still fine")
    assert (await alice.until("message"))["text"] == "still fine"  # the connection was kept


async def test_rooms_and_who_list_what_is_there(wire: Open) -> None:
    alice = await wire("alice", rooms=["#ops", "#lobby"])
    bob = await wire("bob", rooms=["#ops"])
    await welcomed(alice, "#ops", "#lobby")
    await welcomed(bob, "#ops")
    await bob.send(type="away", text="lunch", id="aw")
    away = await bob.until("away")
    assert (away["name"], away["text"], away["id"]) == ("bob", "lunch", "aw")
    await alice.send(type="rooms", id="r")
    listing = await alice.until("rooms_reply")
    assert listing["id"] == "r"
    assert {(r["name"], r["members"]) for r in listing["rooms"]} == {("#ops", 2), ("#lobby", 1)}
    await alice.send(type="who", room="#ops")
    who = await alice.until("who_reply")
    assert who["users"] == [{"name": "alice", "op": True}, {"name": "bob", "away": "lunch"}]
    await bob.send(type="away")
    assert "text" not in await bob.until("away")  # back
    await alice.send(type="who", room="#ops")
    assert (await alice.until("who_reply"))["users"][1] == {"name": "bob"}


# --------------------------------------------------------------------------- private messages


async def test_a_private_message_reaches_its_recipient_alone(wire: Open) -> None:
    alice, bob, carol = [await wire(n) for n in ("alice", "bob", "carol")]
    for conn in (alice, bob, carol):
        await welcomed(conn, "#lobby")
    await carol.send(type="away", text="in a meeting")
    await carol.until("away")
    await alice.send(type="msg", to="BOB", text="psst", id="p1")
    got = await bob.until("private")
    assert (got["name"], got["to"], got["text"], got["id"]) == ("alice", "bob", "psst", "p1")
    echo = await alice.until("private")
    assert echo["id"] == "p1"
    assert "away" not in echo
    await alice.send(type="msg", to="carol", text="ping", id="p2")
    echo = await alice.until("private", id="p2")
    assert echo["away"] == "in a meeting"  # the sender learns the recipient is away
    assert "away" not in await carol.until("private")
    assert not any(f["type"] == "private" for f in carol.seen if f.get("id") == "p1")
    assert all(f["type"] != "private" for f in await bob.quiet() + await carol.quiet())


async def test_private_messages_are_never_logged_even_verbose(server: Any, wire: Open) -> None:
    alice, bob = await wire("alice"), await wire("bob")
    await welcomed(alice, "#lobby")
    await welcomed(bob, "#lobby")
    await alice.send(type="msg", to="bob", text="the secret is 42")
    await bob.until("private")
    assert not any("secret" in repr(event) for event in server.events)


# --------------------------------------------------------------------------- names


async def test_a_nick_change_is_announced_in_every_room_and_the_name_is_free(
    wire: Open, server: Any
) -> None:
    alice = await wire("alice", rooms=["#a", "#b"])
    bob = await wire("bob", rooms=["#a"])
    carol = await wire("carol", rooms=["#b"])
    await welcomed(alice, "#a", "#b")
    await welcomed(bob, "#a")
    await welcomed(carol, "#b")
    await bob.send(type="nick", name="alice", id="n0")
    assert (await bob.until("error", id="n0"))["code"] == "name_taken"
    await alice.send(type="nick", name="Alicia")
    seen_by_bob = await bob.until("nick")
    assert (seen_by_bob["room"], seen_by_bob["name"], seen_by_bob["new"]) == (
        "#a",
        "alice",
        "Alicia",
    )
    assert (await carol.until("nick"))["room"] == "#b"
    assert {(f["room"]) for f in [await alice.until("nick"), await alice.until("nick")]} == {
        "#a",
        "#b",
    }
    await bob.send(type="nick", name="alice")  # the old name is free now
    assert (await bob.until("nick"))["new"] == "alice"
    assert set(server.hub.members) == {"alicia", "alice", "carol"}


async def test_a_nick_change_in_no_room_is_answered_without_a_room(wire: Open) -> None:
    loner = await wire("loner", rooms=[])
    await loner.until("welcome")
    await loner.send(type="nick", name="hermit")
    answer = await loner.until("nick")
    assert (answer["name"], answer["new"]) == ("loner", "hermit")
    assert "room" not in answer
    assert "seq" not in answer


# --------------------------------------------------------------------------- version 1


async def test_a_version_1_client_sees_the_lobby_only_in_version_1_frames(wire: Open) -> None:
    old = await wire("old", version=1)
    welcome = await old.read()
    assert welcome is not None
    assert welcome == {
        "type": "welcome",
        "version": 1,
        "name": "old",
        "users": ["old"],
        "server": welcome["server"],
        "seq": 0,
        "online": 1,
    }
    new = await wire("new", rooms=["#lobby", "#ops"])
    await welcomed(new, "#lobby", "#ops")
    await new.send(type="say", room="#ops", text="not for old")
    await new.send(type="say", text="waves", action=True, id="x")
    await new.send(type="nick", name="newer")
    await new.send(type="part", room="#lobby")
    frames = [await old.read() for _ in range(5)]
    assert [f and f["type"] for f in frames] == ["join", "join", "message", "leave", "leave"]
    join_old, join_new, action, nick, part = frames
    assert join_new == {"type": "join", "seq": 2, "time": join_new["time"], "name": "new"}
    assert action == {
        "type": "message",
        "seq": 3,
        "time": action["time"],
        "name": "new",
        "text": "/me waves",
    }
    assert (nick["name"], nick["reason"], nick["seq"]) == ("new", "nick", 4)
    assert (part["name"], part["reason"], part["seq"]) == ("newer", "part", 5)
    assert join_old is not None
    assert join_old["seq"] == 1
    # Version-2 frames from a version-1 connection: as a version-1 server answered them.
    await old.send(type="join", room="#ops")
    assert (await old.until("error"))["code"] == "unknown_type"
    # Fields version 1 did not know are ignored: this is a plain say in the lobby.
    await old.send(type="say", text="hi", room="#ops", id="ignored")
    echo = await old.until("message")
    assert echo == {"type": "message", "seq": 6, "time": echo["time"], "name": "old", "text": "hi"}


async def test_no_private_messages_to_a_version_1_client(wire: Open) -> None:
    old, new = await wire("old", version=1), await wire("new")
    await old.until("welcome")
    await welcomed(new, "#lobby")
    await new.send(type="msg", to="old", text="hi", id="p")
    error = await new.until("error")
    assert (error["code"], error["id"]) == ("private_unsupported", "p")
    assert all(f["type"] != "private" for f in await old.quiet())


# --------------------------------------------------------------------------- the client core


async def test_the_client_core_speaks_rooms_and_matches_its_messages_by_id(server: Any) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice", rooms=["#ops", "#lobby"]))
    bob = await within(ChatClient.join(HOST, server.port, "bob", rooms=["#ops"]))
    assert isinstance(alice, ChatClient)
    assert isinstance(bob, ChatClient)
    try:
        assert [s.room for s in alice.joined] == ["#ops", "#lobby"]
        assert alice.rooms.current == "#ops"
        await alice.say("same words")
        await alice.say("same words", room="#lobby")
        await alice.msg("bob", "same words")
        assert len(alice.unconfirmed) == 3
        frames = aiter(alice)
        seen: list[object] = []
        while alice.unconfirmed:
            seen.append(await within(anext(frames)))
        rooms = [f.room for f in seen if isinstance(f, Message)]
        assert rooms == ["#ops", "#lobby"]
        assert [f.to for f in seen if isinstance(f, Private)] == ["bob"]
        assert "alice" in alice.rooms.members("#ops")
        assert "bob" in alice.rooms.members("#ops")
    finally:
        await alice.close()
        await bob.close()
