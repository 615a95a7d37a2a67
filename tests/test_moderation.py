"""Operators and moderation on the wire: a real server with a real history file, raw
sockets as any client would speak (docs/protocol.md, "Moderation")."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chatctl.server.config import ServerConfig
from chatctl.server.listener import ChatServer
from chatctl.server.operators import OperatorsError
from tests.wire import Wire, welcomed


@asynccontextmanager
async def serving(path: Path, **config: Any) -> AsyncIterator[ChatServer]:
    async with ChatServer(ServerConfig(port=0, history=str(path), **config)) as server:
        yield server


async def joined(port: int, name: str, *rooms: str, **hello: Any) -> Wire:
    """``name`` in ``rooms`` (``#lobby`` by default), past its welcome and room frames."""
    where = list(rooms) or ["#lobby"]
    conn = await Wire.hello(port, name, rooms=where, **hello)
    await welcomed(conn, *where)
    return conn


async def event(conn: Wire, kind: str, **fields: Any) -> dict[str, Any]:
    """The next moderation event of ``kind``, as every member of the room gets it."""
    return await conn.until("message", event=kind, **fields)


async def test_the_first_one_into_a_room_is_its_operator_and_sets_the_topic(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice", "#ops")
        bob = await joined(server.port, "bob", "#ops")
        await alice.send(type="topic", room="#ops", text="deploy at 10", id="t1")
        told = await event(bob, "topic")
        assert told["name"] == "alice"
        assert told["action"] is True  # an older client shows "* alice set the topic: ..."
        assert told["text"] == "set the topic: deploy at 10"
        mine = await event(alice, "topic")
        assert mine["id"] == "t1"  # the operator's own request, confirmed
        assert mine["seq"] == told["seq"]

        await bob.send(type="topic", room="#ops", text="mine now", id="t2")
        refused = await bob.until("error", id="t2")
        assert refused["code"] == "not_operator"
        assert server.hub.rooms["#ops"].topic == "deploy at 10"  # nothing happened

        carol = await joined(server.port, "carol", "#ops")
        await carol.close()
        rooms = await _ask(bob, "rooms")
        assert {"name": "#ops", "members": 2, "topic": "deploy at 10"} in rooms["rooms"]
        who = await _ask(bob, "who", room="#ops")
        assert who["users"] == [{"name": "alice", "op": True}, {"name": "bob"}]
        for conn in (alice, bob):
            await conn.close()


async def _ask(conn: Wire, type: str, **fields: Any) -> dict[str, Any]:
    await conn.send(type=type, id="q", **fields)
    return await conn.until(f"{type}_reply", id="q")


async def test_a_kick_is_told_to_the_room_then_the_one_kicked_is_out(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="kick", name="BOB", reason="spam", id="k")
        kick = await event(bob, "kick")
        assert (kick["name"], kick["target"], kick["text"]) == ("alice", "bob", "kicked bob (spam)")
        out = await bob.until("part", name="bob")
        assert out["reason"] == "kicked"
        assert out["seq"] == kick["seq"] + 1
        await event(alice, "kick", id="k")
        await alice.until("part", name="bob")
        assert [m.name for m in server.hub.rooms["#lobby"].members] == ["alice"]

        await bob.send(type="say", room="#lobby", text="still here?", id="s")
        assert (await bob.until("error", id="s"))["code"] == "not_in_room"
        await bob.send(type="join", room="#lobby")  # a kick is not a ban: back at once
        await bob.until("room", room="#lobby")
        for conn in (alice, bob):
            await conn.close()


async def test_a_muted_member_is_told_why_and_nobody_sees_the_line(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="mute", name="bob", seconds=600)
        mute = await event(bob, "mute")
        assert mute["text"] == "muted bob for 10 minutes"
        await bob.send(type="say", room="#lobby", text="flood", id="f")
        error = await bob.until("error", id="f")
        assert error["code"] == "muted"
        assert "10 minutes more" in error["message"]
        await bob.send(type="say", room="#lobby", text="waves", action=True, id="f2")
        assert (await bob.until("error", id="f2"))["code"] == "muted"
        await alice.send(type="say", room="#lobby", text="teacher talks", id="a")
        await alice.until("message", id="a")
        assert not [f for f in alice.seen if f.get("text") in ("flood", "waves")]

        await alice.send(type="mod", room="#lobby", do="unmute", name="bob")
        await event(bob, "unmute")
        await bob.send(type="say", room="#lobby", text="sorry", id="ok")
        await alice.until("message", id="ok")
        for conn in (alice, bob):
            await conn.close()


async def test_a_mute_ends_by_itself(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="mute", name="bob", seconds=1)
        await event(bob, "mute")
        room = server.hub.rooms["#lobby"]
        room.muted["bob"] = 0.0  # as if its second were up (the clock is not the test's)
        await bob.send(type="say", room="#lobby", text="free again", id="x")
        await alice.until("message", id="x")
        assert "bob" not in room.muted
        for conn in (alice, bob):
            await conn.close()


@pytest.mark.parametrize(
    ("frame", "fields"),
    [
        ("topic", {"text": "mine"}),
        ("mod", {"do": "kick", "name": "alice"}),
        ("mod", {"do": "mute", "name": "alice"}),
        ("mod", {"do": "unmute", "name": "alice"}),
        ("mod", {"do": "op", "name": "bob"}),
        ("mod", {"do": "deop", "name": "alice"}),
        ("mod", {"do": "ban", "name": "alice"}),
        ("mod", {"do": "ban", "name": "10.0.0.0/8"}),
        ("mod", {"do": "unban", "name": "alice"}),
        ("mod", {"do": "voice", "name": "bob"}),
        ("mod", {"do": "voice"}),
        ("mod", {"do": "devoice", "name": "alice"}),
        ("mod", {"do": "moderate"}),
        ("mod", {"do": "unmoderate"}),
        ("hands", {}),
        ("bans", {}),
    ],
)
async def test_someone_who_is_not_an_operator_changes_nothing(
    tmp_path: Path, frame: str, fields: dict[str, str]
) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        room = server.hub.rooms["#lobby"]

        def state() -> tuple[object, ...]:
            bans = server.hub.bans.of("#lobby", 0.0)
            return (
                room.topic,
                set(room.operators),
                dict(room.muted),
                room.seq,
                room.moderated,
                set(room.voiced),
                bans,
            )

        before = state()
        await bob.send(type=frame, room="#lobby", id="no", **fields)
        error = await bob.until("error", id="no")
        assert error["code"] == "not_operator"
        assert error["room"] == "#lobby"
        assert state() == before
        assert not [f for f in await alice.quiet(0.2) if f.get("event")]  # nothing told
        for conn in (alice, bob):
            await conn.close()


async def test_op_and_deop_pass_the_room_on(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="op", name="bob")
        assert (await event(bob, "op"))["text"] == "made bob an operator"
        await bob.send(type="mod", room="#lobby", do="deop", name="alice", reason="my turn")
        assert (await event(alice, "deop"))["text"] == "took operator away from alice (my turn)"
        await alice.send(type="topic", room="#lobby", text="x", id="t")
        assert (await alice.until("error", id="t"))["code"] == "not_operator"
        await bob.send(type="mod", room="#lobby", do="kick", name="nobody", id="k")
        missing = await bob.until("error", id="k")
        assert missing["code"] == "no_such_user"
        for conn in (alice, bob):
            await conn.close()


async def test_a_renamed_member_keeps_their_standing(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="mute", name="bob")
        await event(bob, "mute")
        await bob.send(type="nick", name="robert")
        await bob.until("nick", new="robert")
        await bob.send(type="say", room="#lobby", text="hi", id="h")
        assert (await bob.until("error", id="h"))["code"] == "muted"  # no escape by /nick
        await alice.send(type="nick", name="alicia")
        await alice.until("nick", new="alicia")
        await alice.send(type="mod", room="#lobby", do="unmute", name="robert")
        await event(bob, "unmute")
        for conn in (alice, bob):
            await conn.close()


async def test_server_operators_moderate_every_room_and_cannot_be_moderated(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "h.sqlite3", operators=("teacher",)) as server:
        teacher = await joined(server.port, "teacher")
        student = await joined(server.port, "student", "#lobby", "#games")
        hub = server.hub
        assert "student" not in hub.rooms["#lobby"].operators  # #lobby is the operators'
        assert "student" in hub.rooms["#games"].operators  # a room of one's own
        await teacher.send(type="join", room="#games")
        await teacher.until("room", room="#games")
        for do in ("kick", "mute", "deop"):
            await student.send(type="mod", room="#games", do=do, name="teacher", id=do)
            assert (await student.until("error", id=do))["code"] == "protected"
        await teacher.send(type="topic", room="#games", text="homework first")
        await event(student, "topic", room="#games")
        await teacher.send(type="mod", room="#games", do="deop", name="student")
        await event(student, "deop", room="#games")
        status = hub.status().server
        assert status.operators == ["teacher"]
        assert [(m.by, m.event, m.name) for m in status.moderation] == [
            ("teacher", "topic", None),
            ("teacher", "deop", "student"),
        ]
        for conn in (teacher, student):
            await conn.close()


async def test_moderation_is_kept_in_history_and_the_topic_outlives_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    async with serving(path) as server:
        alice = await joined(server.port, "alice", "#ops")
        bob = await joined(server.port, "bob", "#ops")
        await alice.send(type="topic", room="#ops", text="incident 42")
        await alice.send(type="mod", room="#ops", do="kick", name="bob", reason="not on call")
        await event(alice, "kick")
        for conn in (alice, bob):
            await conn.close()
    async with serving(path) as server:
        carol = await Wire.hello(server.port, "carol", rooms=["#ops"], history=10)
        (state,) = await welcomed(carol, "#ops")
        assert state["topic"] == "incident 42"
        replayed = [await carol.read() for _ in range(state["history"])]
        events = [(m["event"], m.get("target"), m["text"]) for m in replayed if m and "event" in m]
        assert events == [
            ("topic", None, "set the topic: incident 42"),
            ("kick", "bob", "kicked bob (not on call)"),
        ]
        assert all(m and m["history"] for m in replayed)
        await carol.close()
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT name, event, target FROM messages ORDER BY id").fetchall()
    assert kept == [("alice", "topic", None), ("alice", "kick", "bob")]


async def test_a_version_1_client_sees_moderation_as_actions(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        old = await Wire.hello(server.port, "old", version=1)
        await old.until("welcome")
        await alice.send(type="topic", room="#lobby", text="be kind")
        told = await old.until("message", name="alice")
        assert told["text"] == "/me set the topic: be kind"
        assert set(told) == {"type", "seq", "time", "name", "text"}  # version-1 fields only
        await alice.send(type="mod", room="#lobby", do="kick", name="old", reason="spam")
        await old.until("message", text="/me kicked old (spam)")
        closed = await old.until("error")  # no other room, no join: closed, with the words
        assert (closed["code"], closed["message"]) == ("kicked", "alice kicked old (spam)")
        assert await old.read() is None
        assert (await alice.until("leave", name="old"))["reason"] == "kicked"
        for conn in (alice, old):
            await conn.close()


async def test_operators_need_claimed_names(tmp_path: Path) -> None:
    server = ChatServer(ServerConfig(port=0, operators=("teacher",)))
    with pytest.raises(OperatorsError, match="need claimed names"):
        await server.start()
    ops = tmp_path / "ops"
    ops.write_text("teacher\nnot a name\n")
    server = ChatServer(ServerConfig(port=0, history=str(tmp_path / "h"), ops_file=str(ops)))
    with pytest.raises(OperatorsError, match="line 2"):
        await server.start()


async def test_the_ops_file_is_read_again_and_a_broken_one_changes_nothing(
    tmp_path: Path,
) -> None:
    ops = tmp_path / "ops"
    ops.write_text("# the teachers\nada\n\n")
    async with serving(tmp_path / "h.sqlite3", ops_file=str(ops)) as server:
        hub = server.hub
        assert hub.operators.names == ("ada",)
        ops.write_text("ada\ngrace  # from Monday\n")
        hub.reload_operators()
        assert hub.operators.names == ("ada", "grace")
        ops.write_text("grace\nbad name\n")
        hub.reload_operators()
        assert hub.operators.names == ("ada", "grace")


async def test_a_moderated_room_hears_operators_and_the_voiced_and_hands_queue(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        teacher = await joined(server.port, "teacher")
        ann = await joined(server.port, "ann")
        ben = await joined(server.port, "ben")
        await ann.send(type="hand", room="#lobby", id="h0")
        assert (await ann.until("error", id="h0"))["code"] == "invalid_frame"  # just speak
        await teacher.send(type="mod", room="#lobby", do="moderate")
        assert (await event(ann, "moderate"))["text"] == "moderated the room"
        await ann.send(type="say", room="#lobby", text="me first", id="s")
        refused = await ann.until("error", id="s")
        assert refused["code"] == "moderated"
        assert "/hand" in refused["message"]
        await teacher.send(type="say", room="#lobby", text="quiet please", id="t")
        await ann.until("message", id="t")  # operators speak

        for conn in (ben, ann):
            await conn.send(type="hand", room="#lobby")
        assert (await ben.until("hand"))["position"] == 1
        assert (await ann.until("hand"))["position"] == 2
        raised = [await teacher.until("hand") for _ in range(2)]
        assert [h["name"] for h in raised] == ["ben", "ann"]  # the operator sees the queue
        assert not [f for f in ben.seen if f["type"] == "hand" and f["name"] == "ann"]
        await ann.send(type="hands", room="#lobby", id="q")
        assert (await ann.until("error", id="q"))["code"] == "not_operator"
        await teacher.send(type="hands", room="#lobby", id="q")
        assert (await teacher.until("hands_reply"))["names"] == ["ben", "ann"]

        await teacher.send(type="mod", room="#lobby", do="voice")  # the first hand up
        assert (await event(ann, "voice"))["target"] == "ben"
        await ben.send(type="say", room="#lobby", text="my answer", id="b")
        await ann.until("message", id="b")
        await teacher.send(type="hands", room="#lobby", id="q2")
        assert (await teacher.until("hands_reply", id="q2"))["names"] == ["ann"]

        await teacher.send(type="mod", room="#lobby", do="unmoderate")
        await event(ann, "unmoderate")
        await ann.send(type="say", room="#lobby", text="finally", id="a")
        await teacher.until("message", id="a")
        assert server.hub.rooms["#lobby"].hands == {}
        for conn in (teacher, ann, ben):
            await conn.close()


async def test_a_read_only_connection_watches_and_cannot_send(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        screen = await joined(server.port, "screen", read_only=True)
        for i, frame in enumerate(
            [
                {"type": "say", "room": "#lobby", "text": "hi"},
                {"type": "msg", "to": "alice", "text": "hi"},
                {"type": "nick", "name": "other"},
                {"type": "topic", "room": "#lobby", "text": "mine"},
                {"type": "hand", "room": "#lobby"},
            ]
        ):
            await screen.send(**frame, id=f"r{i}")
            assert (await screen.until("error", id=f"r{i}"))["code"] == "read_only"
        await alice.send(type="say", room="#lobby", text="on the screen", id="a")
        await screen.until("message", id="a")  # it watches
        await screen.send(type="who", room="#lobby", id="w")
        assert [u["name"] for u in (await screen.until("who_reply"))["users"]] == [
            "alice",
            "screen",
        ]
        assert not [f for f in alice.seen if f["type"] == "message" and f["name"] == "screen"]
        for conn in (alice, screen):
            await conn.close()


async def test_without_room_founders_a_new_room_has_no_operator(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3", room_founders=False) as server:
        alice = await joined(server.port, "alice", "#ops")
        assert server.hub.rooms["#ops"].operators == set()
        await alice.send(type="topic", room="#ops", text="mine", id="t")
        assert (await alice.until("error", id="t"))["code"] == "not_operator"
        await alice.close()


async def test_without_claims_a_room_operator_who_leaves_is_one_no_more(tmp_path: Path) -> None:
    """Without history anyone may take a name that is free: standing goes with the person."""
    async with ChatServer(ServerConfig(port=0)) as server:
        alice = await joined(server.port, "alice", "#ops")
        bob = await joined(server.port, "bob", "#ops")
        assert server.hub.rooms["#ops"].operators == {"alice"}
        await alice.close()
        await bob.until("leave", name="alice")
        assert server.hub.rooms["#ops"].operators == set()
        again = await joined(server.port, "alice", "#ops")
        await again.send(type="topic", room="#ops", text="back", id="t")
        assert (await again.until("error", id="t"))["code"] == "not_operator"
        for conn in (again, bob):
            await conn.close()
