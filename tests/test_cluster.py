"""Several servers, one conversation: rooms shared through a real redis-server.

Two real ``chatctl serve --backplane`` processes on ephemeral ports and one real
Redis (tests/redisproc.py); the clients are raw protocol connections (tests/wire.py),
so each frame, its ``seq`` and its order can be checked as a third-party client
would see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redisproc import RedisProcess, free_port, needs_redis, redis
from tests.support import FACTOR, ServeProcess, run_chatctl, wait_until
from tests.wire import Wire, welcomed

pytestmark = [needs_redis, pytest.mark.timeout(90)]
__all__ = ["redis"]


@pytest.fixture
def pair(redis: RedisProcess, tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    with contextlib.ExitStack() as stack:  # each stopped, even if another's stop fails
        servers = []
        for n in ("a", "b"):
            server = ServeProcess("--backplane", redis.url, "--history", str(tmp_path / f"{n}.db"))
            stack.callback(server.stop)
            servers.append(server)
        yield servers[0], servers[1]


async def _joined(port: int, name: str, *rooms: str) -> Wire:
    conn = await Wire.hello(port, name, rooms=list(rooms))
    await welcomed(conn, *rooms)
    return conn


async def _messages(conn: Wire, count: int, room: str = "#ops") -> list[tuple[int, str, str]]:
    got: list[tuple[int, str, str]] = []
    while len(got) < count:
        frame = await conn.until("message", 10 * FACTOR, room=room)
        got.append((frame["seq"], frame["name"], frame["text"]))
    return got


async def test_two_servers_one_order_exactly_once(pair: tuple[ServeProcess, ServeProcess]) -> None:
    a, b = pair
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    carol = await _joined(a.port, "carol", "#ops")
    people = [alice, bob, carol]
    each = 40

    async def talk(conn: Wire, name: str) -> None:
        for n in range(each):
            await conn.send(type="say", room="#ops", text=f"{name} {n}", id=f"{name}-{n}")
            if n % 7 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(
        *(talk(c, n) for c, n in zip(people, ["alice", "bob", "carol"], strict=True))
    )
    seen = [await _messages(conn, 3 * each) for conn in people]
    assert seen[0] == seen[1] == seen[2]  # one order, the same for everyone
    seqs = [seq for seq, _name, _text in seen[0]]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    texts = [text for _seq, _name, text in seen[0]]
    everyone = ("alice", "bob", "carol")
    assert sorted(texts) == sorted(f"{p} {n}" for p in everyone for n in range(each))
    for name in ("alice", "bob", "carol"):  # each sender's own order is kept
        mine = [t for t in texts if t.startswith(name)]
        assert mine == [f"{name} {n}" for n in range(each)]
    for conn in people:
        await conn.close()


async def test_names_are_the_clusters(redis: RedisProcess) -> None:
    """Without history (no claims): a name is one person's on the whole cluster."""
    with contextlib.ExitStack() as stack:
        a, b = (ServeProcess("--backplane", redis.url, "--no-history") for _ in range(2))
        stack.callback(a.stop)
        stack.callback(b.stop)
        await _one_alice(a, b)


async def _one_alice(a: ServeProcess, b: ServeProcess) -> None:
    alice = await _joined(a.port, "alice", "#ops")
    other = await Wire.hello(b.port, "ALICE", rooms=["#ops"])
    refused = await other.until("error")
    assert refused["code"] == "name_taken"
    assert await other.read() is None  # closed
    await other.close()
    await alice.close()
    # Once she has gone, the name is free on the other server.
    wait_until(lambda: "alice" not in _status(a), 10 * FACTOR, "alice gone")
    again = await _joined(b.port, "alice", "#ops")
    await again.close()


def _status(server: ServeProcess) -> str:
    done = run_chatctl("status", "--port", str(server.port), "--json")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _users(server: ServeProcess) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in json.loads(_status(server))["users"]}


async def test_status_who_whois_and_rooms_list_everyone(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = pair
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops", "#dev")
    await alice.until("join", name="bob", room="#ops")
    for server in (a, b):
        users = _users(server)
        assert set(users) == {"alice", "bob"}
        assert users["alice"]["server"].endswith(f":{a.port}")
        assert users["bob"]["server"].endswith(f":{b.port}")
        assert set(users["bob"]["rooms"]) == {"#dev", "#ops"}
    await alice.send(type="who", room="#ops", id="w")
    who = await alice.until("who_reply", id="w")
    names = {u["name"]: u for u in who["users"]}
    assert set(names) == {"alice", "bob"}
    assert names["bob"]["server"].endswith(f":{b.port}")
    assert "server" not in names["alice"]
    await alice.send(type="whois", name="bob", id="wi")
    whois = await alice.until("whois_reply", id="wi")
    assert set(whois["rooms"]) == {"#ops", "#dev"}
    await alice.send(type="rooms", id="r")
    rooms = {r["name"]: r["members"] for r in (await alice.until("rooms_reply", id="r"))["rooms"]}
    assert rooms["#ops"] == 2
    assert rooms["#dev"] == 1
    await alice.send(type="msg", to="bob", text="psst", id="p1")
    private = await bob.until("private", name="alice")
    assert private["text"] == "psst"
    await alice.until("private", id="p1")  # echoed to the sender
    for conn in (alice, bob):
        await conn.close()


async def test_history_is_kept_on_every_server(
    pair: tuple[ServeProcess, ServeProcess], tmp_path: Path
) -> None:
    a, b = pair
    alice = await _joined(a.port, "alice", "#ops")
    for n in range(5):
        await alice.send(type="say", room="#ops", text=f"note {n}", id=f"n{n}")
    sent = await _messages(alice, 5)
    # Nobody is in #ops on b, yet b keeps it, with the same seqs, and replays it.
    bob = await Wire.hello(b.port, "bob", rooms=["#ops"], history=10)
    await bob.read()
    state = await bob.until("room", room="#ops")
    assert state["history"] == 5
    replayed = [await bob.until("message", room="#ops") for _ in range(5)]
    assert [(m["seq"], m["name"], m["text"]) for m in replayed] == sent
    wait_until(lambda: _rows(tmp_path / "b.db") == [s[0] for s in sent], 10 * FACTOR, "b.db")
    for conn in (alice, bob):
        await conn.close()


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM messages ORDER BY seq")]


async def test_redis_restart_loses_nothing_doubles_nothing(
    pair: tuple[ServeProcess, ServeProcess], redis: RedisProcess
) -> None:
    a, b = pair
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await alice.until("join", name="bob", room="#ops")
    for n in range(10):
        await alice.send(type="say", room="#ops", text=f"before {n}")
    before = await _messages(bob, 10)
    redis.stop()
    down = await alice.until("error", 10 * FACTOR)
    assert down["code"] == "backplane_down"
    for n in range(10):  # held while Redis is away
        await alice.send(type="say", room="#ops", text=f"during {n}")
        await bob.send(type="say", room="#ops", text=f"bob during {n}")
    redis.start()
    after_alice = await _messages(alice, 20)
    after_bob = await _messages(bob, 20)
    assert after_alice == after_bob
    texts = sorted(t for _s, _n, t in after_bob)
    held = [f"during {n}" for n in range(10)] + [f"bob during {n}" for n in range(10)]
    assert texts == sorted(held)
    seqs = [s for s, _n, _t in before + after_bob]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert not [f for f in await bob.quiet(0.5) if f["type"] == "message"]  # nothing twice
    assert a.log.text().count("reading the cluster's stream") == 2  # at start, and back
    for conn in (alice, bob):
        await conn.close()


async def test_a_killed_server_s_people_are_shown_gone(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = pair
    alice = await _joined(a.port, "alice", "#ops")
    bob = await _joined(b.port, "bob", "#ops")
    await alice.until("join", name="bob", room="#ops")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    gone = await alice.until("leave", 20 * FACTOR, name="bob")
    assert gone["reason"] == "server_gone"
    assert gone["room"] == "#ops"
    assert set(_users(a)) == {"alice"}
    await bob.close()
    await alice.close()


def test_unreachable_redis_is_one_line_and_exit_9() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_chatctl("serve", "--port", "0", "--no-history", "--backplane", url)
    assert done.returncode == 9
    assert "cannot use the backplane" in done.stderr
    assert "Traceback" not in done.stderr
    bad = run_chatctl("serve", "--port", "0", "--backplane", "localhost:6379")
    assert bad.returncode == 2
    assert "redis://" in bad.stderr
