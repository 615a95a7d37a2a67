"""Moderation on a cluster: an operator on one server acts on people on another.

Bans are kept by every server (a banned name cannot come back through the other one),
a kick puts its target out wherever they are connected, operators' rules (op, mute,
voice, moderate) hold in the room on every server, and the first one into a room on a
second server is not its operator when the room is in use on the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redisproc import RedisProcess, needs_redis, redis
from tests.support import FACTOR, ServeProcess
from tests.wire import Wire, welcomed

pytestmark = [needs_redis, pytest.mark.timeout(90)]
__all__ = ["redis"]


@pytest.fixture
def servers(redis: RedisProcess, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    with contextlib.ExitStack() as stack:
        for name in ("a", "b"):
            server = ServeProcess("--backplane", redis.url, "--history", str(tmp_path / name))
            stack.callback(server.stop)
            started.append(server)
        yield started


async def _joined(port: int, name: str, *rooms: str) -> Wire:
    conn = await Wire.hello(port, name, rooms=list(rooms))
    await welcomed(conn, *rooms)
    return conn


async def _in_room(watcher: Wire, room: str, name: str) -> None:
    """Until ``watcher``'s server lists ``name`` in ``room`` (the stream has told it)."""
    deadline = time.monotonic() + 10 * FACTOR
    n = 0
    while True:
        n += 1
        await watcher.send(type="who", room=room, id=f"w{n}")
        reply = await watcher.until("who_reply", id=f"w{n}")
        if name in {u["name"] for u in reply["users"]}:
            return
        assert time.monotonic() < deadline, reply
        await asyncio.sleep(0.05)


async def _answer(conn: Wire, id: str, room: str | None = None) -> dict[str, Any]:
    """The next frame answering ``id`` (its error, say), or (``room``) that room's state."""
    while True:
        frame = await conn.read(10)
        assert frame is not None, conn.seen
        if frame.get("id") == id:
            return frame
        if room is not None and frame["type"] == "room" and frame["room"] == room:
            return frame


async def _until_true(check: Any, what: str) -> None:
    """Until the coroutine function ``check`` says yes: an op on one server reaches the
    other as fast as the stream does."""
    deadline = time.monotonic() + 10 * FACTOR
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_ban_on_one_server_holds_on_the_other(servers: list[ServeProcess]) -> None:
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")  # the room's founder: its operator
    probe = await _joined(b.port, "probe", "#lobby")
    await _in_room(probe, "#ops", "alice")  # b knows #ops is in use
    bob = await _joined(b.port, "bob", "#ops")
    carol = await _joined(b.port, "carol", "#ops")
    await _in_room(alice, "#ops", "carol")
    # bob was the first into #ops on his server, but #ops was in use: he is no operator.
    await bob.send(type="mod", room="#ops", do="kick", name="alice", id="k")
    assert (await _answer(bob, "k")).get("code") == "not_operator"
    # An operator made on one server is one on the other.
    await alice.send(type="mod", room="#ops", do="op", name="carol", id="o")
    await alice.until("message", id="o")

    async def carol_is_operator() -> bool:
        await carol.send(type="bans", room="#ops", id="l")
        frame = await carol.read(10)
        while frame is not None and frame.get("id") != "l":
            frame = await carol.read(10)
        assert frame is not None
        return bool(frame["type"] == "bans_reply")

    await _until_true(carol_is_operator, "carol an operator on b")
    await alice.send(type="mod", room="#ops", do="ban", name="bob", reason="spam", id="b")
    event = await alice.until("message", id="b")
    assert (event["event"], event["target"]) == ("ban", "bob")
    out = await bob.until("part", 10 * FACTOR, name="bob")
    assert out["reason"] == "banned"
    await bob.send(type="join", room="#ops", id="j")
    assert (await _answer(bob, "j", "#ops")).get("code") == "banned"
    await carol.send(type="bans", room="#ops", id="l2")
    listed = (await carol.until("bans_reply", id="l2"))["bans"]
    assert [(x["name"], x["by"], x.get("reason")) for x in listed] == [("bob", "alice", "spam")]
    await alice.send(type="mod", room="#ops", do="unban", name="bob", id="u")
    await alice.until("message", id="u")
    tries = iter(range(1000))

    async def bob_is_back() -> bool:
        id = f"j{next(tries)}"
        await bob.send(type="join", room="#ops", id=id)
        frame = await _answer(bob, id, "#ops")
        assert frame["type"] == "room" or frame.get("code") == "banned", frame
        return bool(frame["type"] == "room")

    await _until_true(bob_is_back, "bob unbanned on b")
    for conn in (alice, probe, bob, carol):
        await conn.close()


async def test_a_kick_and_a_mute_reach_the_other_server(servers: list[ServeProcess]) -> None:
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")
    dave = await _joined(b.port, "dave", "#ops")
    erin = await _joined(b.port, "erin", "#ops")
    await _in_room(alice, "#ops", "erin")
    await alice.send(type="mod", room="#ops", do="kick", name="DAVE", reason="off call", id="k")
    kick = await alice.until("message", id="k")
    assert (kick["target"], kick["text"]) == ("dave", "kicked dave (off call)")
    out = await dave.until("part", 10 * FACTOR, name="dave")
    assert out["reason"] == "kicked"
    assert (await erin.until("part", 10 * FACTOR, name="dave"))["reason"] == "kicked"
    await alice.until("part", 10 * FACTOR, name="dave")
    await alice.send(type="mod", room="#ops", do="mute", name="erin", seconds=600, id="m")
    await alice.until("message", id="m")
    tries = iter(range(1000))

    async def erin_is_muted() -> bool:
        id = f"s{next(tries)}"
        await erin.send(type="say", room="#ops", text="can I speak?", id=id)
        while True:
            frame = await erin.read(10)
            assert frame is not None
            if frame.get("id") == id:
                return bool(frame["type"] == "error" and frame["code"] == "muted")

    await _until_true(erin_is_muted, "erin muted on b")
    # Someone in the room nowhere: as before, nobody to kick.
    await alice.send(type="mod", room="#ops", do="kick", name="zed", id="z")
    assert (await _answer(alice, "z")).get("code") == "no_such_user"
    for conn in (alice, dave, erin):
        await conn.close()
