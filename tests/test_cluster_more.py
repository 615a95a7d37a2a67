"""The cluster beyond messages: nick, away, topic, IRC on another server, a Redis that
lost its data, a server stopped for seconds while the others talk.

Real ``chatctl serve --backplane`` processes and a real redis-server, as in
tests/test_cluster.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ircclients import irc_port
from tests.ircwire import Irc
from tests.redisproc import RedisProcess, needs_redis, redis
from tests.support import FACTOR, ServeProcess, run_chatctl, wait_until
from tests.wire import Wire, welcomed

pytestmark = [needs_redis, pytest.mark.timeout(90)]
__all__ = ["redis"]


@pytest.fixture
def servers(redis: RedisProcess, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    with contextlib.ExitStack() as stack:  # each stopped, even if another's stop fails
        for name in ("a", "b"):
            server = ServeProcess(
                *("--backplane", redis.url, "--history", str(tmp_path / f"{name}.db")),
                *("--irc", "0", "--rate", "0"),
            )
            stack.callback(server.stop)
            started.append(server)
        yield started


def _status(server: ServeProcess) -> str:
    done = run_chatctl("status", "--port", str(server.port), "--json")
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _joined(port: int, name: str, *rooms: str) -> Wire:
    conn = await Wire.hello(port, name, rooms=list(rooms))
    await welcomed(conn, *rooms)
    return conn


async def test_nick_away_and_topic_reach_the_other_server(servers: list[ServeProcess]) -> None:
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await alice.until("join", name="bob")
    await bob.send(type="nick", name="robert")
    renamed = await alice.until("nick", name="bob", room="#ops")
    assert renamed["new"] == "robert"
    assert renamed["seq"] > 0
    mine = await bob.until("nick", name="bob", room="#ops")
    assert mine["seq"] == renamed["seq"]
    await alice.send(type="nick", name="Robert", id="n")  # now his, on the other server
    refused = await alice.until("error")
    # Taken on the other server; claimed by him too, once his claim has reached this one.
    assert refused["code"] in {"name_taken", "name_claimed"}
    await bob.send(type="away", text="lunch")
    await bob.until("away")
    deadline = time.monotonic() + 10 * FACTOR
    while True:
        await alice.send(type="who", room="#ops", id="w")
        users = {u["name"]: u for u in (await alice.until("who_reply", id="w"))["users"]}
        if users.get("robert", {}).get("away") == "lunch":
            break
        assert time.monotonic() < deadline, users
    await alice.send(type="topic", room="#ops", text="deploy at 10")  # she founded #ops
    event = await bob.until("message", room="#ops", event="topic")
    assert event["topic"] == "deploy at 10"
    await bob.send(type="rooms", id="r")
    rooms = {r["name"]: r for r in (await bob.until("rooms_reply", id="r"))["rooms"]}
    assert rooms["#ops"].get("topic") == "deploy at 10"
    for conn in (alice, bob):
        await conn.close()


async def test_a_server_started_later_has_what_redis_keeps(
    servers: list[ServeProcess], redis: RedisProcess, tmp_path: Path
) -> None:
    """What the publish script keeps in Redis (members, away texts) is what a server that
    starts later reads: text with quotes, a backslash and non-ASCII arrives as it was."""
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops", "#dev")
    bob = await _joined(b.port, "bob", "#ops")
    away = 'lunch "déjà vu" \\ back at 2 🍜'
    await bob.send(type="away", text=away)
    await bob.until("away")
    await alice.until("join", name="bob")
    late = ServeProcess("--backplane", redis.url, "--history", str(tmp_path / "c.db"))
    try:
        carol = await _joined(late.port, "carol", "#ops")
        await carol.send(type="who", room="#ops", id="w")
        users = {u["name"]: u for u in (await carol.until("who_reply", id="w"))["users"]}
        assert set(users) == {"alice", "bob", "carol"}
        assert users["bob"].get("away") == away
        assert users["alice"].get("away") is None
        await carol.send(type="rooms", id="r")
        rooms = {r["name"]: r for r in (await carol.until("rooms_reply", id="r"))["rooms"]}
        assert rooms["#dev"]["members"] == 1
        await carol.close()
    finally:
        late.stop()
    for conn in (alice, bob):
        await conn.close()


async def test_an_irc_client_on_the_other_server(servers: list[ServeProcess]) -> None:
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")
    wait_until(lambda: '"name":"alice"' in _status(b), 10 * FACTOR, "alice known on b")
    irc = await Irc.registered(irc_port(b), "bob")
    await irc.send("JOIN #ops")
    names = await irc.until("353")
    assert "alice" in names.params[-1]
    await alice.until("join", name="bob")
    await alice.send(type="say", room="#ops", text="hello from a")
    said = await irc.until("PRIVMSG")
    assert said.params == ["#ops", "hello from a"]
    assert said.nick == "alice"
    await irc.send("PRIVMSG #ops :hello from irc")
    heard = await alice.until("message", name="bob")
    assert heard["text"] == "hello from irc"
    await alice.send(type="bye")
    quit_ = await irc.until("QUIT")
    assert quit_.nick == "alice"
    assert not [m for m in await irc.quiet(0.5) if m.command == "QUIT"]  # once per person
    await irc.close()
    await alice.close()


async def test_a_redis_that_lost_its_data_is_a_gap_and_seqs_go_on(
    servers: list[ServeProcess], redis: RedisProcess
) -> None:
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await alice.until("join", name="bob")
    await alice.send(type="say", room="#ops", text="before")
    before = await bob.until("message", text="before")
    redis.stop()
    shutil.rmtree(redis.folder / "appendonlydir")  # as if it ran without AOF
    redis.start()
    gap = await bob.until("error", 15 * FACTOR, code="backplane_gap")
    assert "missing" in gap["message"]
    await alice.until("error", 15 * FACTOR, code="backplane_gap")
    await alice.send(type="say", room="#ops", text="after")
    after = await bob.until("message", 10 * FACTOR, text="after")
    assert after["seq"] > before["seq"]  # the counter was raised again, never reused
    # Presence was told again: each server still lists the other's people.
    for server, other in ((a, "bob"), (b, "alice")):
        assert f'"name":"{other}"' in _status(server)
    for conn in (alice, bob):
        await conn.close()


async def test_a_stopped_server_catches_up_from_its_cursor(servers: list[ServeProcess]) -> None:
    """SIGSTOP for 5 s while 4 MB are said elsewhere: after it, its client gets every
    message once, in order, or is cut off as a slow consumer, never silently short."""
    a, b = servers
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await alice.until("join", name="bob")
    b.proc.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        text = "x" * 4000
        for n in range(1000):  # 4 MB
            await alice.send(type="say", room="#ops", text=f"{n} {text}")
        for n in range(1000):
            await alice.until("message", 10 * FACTOR, name="alice", text=f"{n} {text}")
        await asyncio.sleep(max(0.0, stopped + 5 - time.monotonic()))  # the fault: 5 s stopped
    finally:
        b.proc.send_signal(signal.SIGCONT)
    got = []
    while len(got) < 1000:
        frame = await bob.read(20 * FACTOR)
        if frame is None:  # cut off: it must have been told why, by its leave reason
            break
        if frame["type"] == "message":
            got.append(frame)
    if len(got) < 1000:
        done = run_chatctl("status", "--port", str(b.port), "--json")
        assert '"slow_consumer"' in done.stdout, done.stdout
    numbers = [int(f["text"].split()[0]) for f in got]
    assert numbers == list(range(len(numbers)))
    seqs = [f["seq"] for f in got]
    assert seqs == sorted(seqs)
    for conn in (alice, bob):
        await conn.close()


async def test_claimed_names_and_read_marks_are_the_clusters(
    servers: list[ServeProcess],
) -> None:
    a, b = servers
    alice = await Wire.hello(a.port, "alice", rooms=["#ops"])
    welcome = await alice.until("welcome")
    claim = await alice.until("claim")
    assert claim["server_id"] == welcome["server_id"]
    state = await alice.until("room", room="#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await bob.send(type="say", room="#ops", text="seen")
    seen = await alice.until("message", text="seen")
    await alice.send(type="read", room="#ops", seq=seen["seq"])
    await alice.send(type="bye")
    await bob.until("leave", name="alice")
    await alice.close()
    for n in range(3):
        await bob.send(type="say", room="#ops", text=f"while away {n}")
    await bob.until("message", text="while away 2")
    # Someone else cannot take the name on the other server...
    stranger = await Wire.hello(b.port, "alice", rooms=["#ops"])
    refused = await stranger.until("error", 10 * FACTOR)
    assert refused["code"] == "name_claimed"
    assert refused["server_id"] == welcome["server_id"]
    await stranger.close()
    # ...she can, with the secret the first one gave her, and is told what is new there.
    back = await Wire.hello(b.port, "alice", rooms=["#ops"], secret=claim["secret"], history=10)
    first = await back.until("welcome")
    assert first["server_id"] == welcome["server_id"]  # one identity for the cluster
    again = await back.until("room", room="#ops")
    assert again["unread"] == 3
    assert again["seq"] > state["seq"]
    for conn in (back, bob):
        await conn.close()


async def test_a_stream_entry_a_server_cannot_apply_stops_nothing(
    redis: RedisProcess, servers: list[ServeProcess]
) -> None:
    """An op that decodes but cannot be applied (a claim whose hash is not hex, as a buggy
    or newer server could write) is logged and skipped; the ops after it in the entry and
    the entries after it are applied. Before, the exception ended the reading of the whole
    batch, whose cursor had moved past it: a message in the same entry was lost."""
    from chatctl.server.backplane.ops import Claimed, Said, encode_ops

    a, b = servers
    alice = await Wire.hello(a.port, "alice", rooms=["#ops"])
    await welcomed(alice, "#ops")
    bob = await Wire.hello(b.port, "bob", rooms=["#ops"])
    await welcomed(bob, "#ops")
    joined = await alice.until("join", name="bob", room="#ops")
    after = joined["seq"] + 1  # the room's next seq, as the publish script would give it
    ops = [Claimed("mallory", "not hex", time.time()), Said("#ops", "carol", "through", 1.0)]
    entry = ["b", encode_ops(ops).decode(), "s", f"1,{after}", "o", "elsewhere"]
    redis.command("XADD", "chatctl:stream", "*", *entry)
    for conn in (alice, bob):
        got = await conn.until("message", 10 * FACTOR, room="#ops")
        assert (got["name"], got["text"], got["seq"]) == ("carol", "through", after)
    for server in (a, b):
        server.log.wait_for(r"Claimed not applied \(ValueError\)", 10 * FACTOR)
        assert "not hex" not in server.log.text()  # what an op holds is not logged
    for conn in (alice, bob):
        await conn.close()
