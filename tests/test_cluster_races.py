"""What a review of the backplane found, each as it was reproduced: a nick in no room,
two connections asking for one name at once, a nick with a part and a join before the
cluster's word, a name taken over with fewer rooms, a server given up for dead that
comes back to find its name given away.

Real ``chatctl serve --backplane`` processes and a real redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redisproc import RedisProcess, needs_redis, redis
from tests.support import FACTOR, ServeProcess, run_chatctl, wait_until
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


def _status(server: ServeProcess) -> str:
    return run_chatctl("status", "--port", str(server.port), "--json").stdout


async def _joined(port: int, name: str, *rooms: str, **hello: Any) -> Wire:
    conn = await Wire.hello(port, name, rooms=list(rooms), **hello)
    await welcomed(conn, *rooms)
    return conn


async def _who(conn: Wire, room: str) -> dict[str, dict[str, Any]]:
    await conn.send(type="who", room=room, id=f"who{room}")
    reply = await conn.until("who_reply", id=f"who{room}")
    return {u["name"]: u for u in reply["users"]}


async def _eventually_who(conn: Wire, room: str, want: set[str]) -> None:
    deadline = time.monotonic() + 10 * FACTOR
    while (names := set(await _who(conn, room))) != want:
        assert time.monotonic() < deadline, names
        await asyncio.sleep(0.1)


async def _knows_the_claim(port: int, name: str) -> None:
    """Until the server on ``port`` has read ``name``'s claim from the stream (a claim
    made on another server reaches this one as fast as the stream does, not at once):
    without its secret, the name is then ``name_claimed`` there, not ``name_taken``."""
    deadline = time.monotonic() + 10 * FACTOR
    while True:
        probe = await Wire.hello(port, name)
        refused = await probe.until("error")
        await probe.close()
        if refused["code"] == "name_claimed":
            return
        assert refused["code"] == "name_taken", refused
        assert time.monotonic() < deadline, "the claim never reached the other server"
        await asyncio.sleep(0.02)


async def test_a_nick_in_no_room_stops_nobody(servers: list[ServeProcess]) -> None:
    a, b = servers
    loner = await _joined(a.port, "loner", "#lobby")
    await loner.send(type="part", room="#lobby")
    await loner.until("part")
    await loner.send(type="nick", name="hermit")
    renamed = await loner.until("nick")
    assert renamed["new"] == "hermit"
    # Both servers still read the stream: a newcomer is welcomed, a message goes through.
    alice = await _joined(b.port, "alice", "#ops")
    bob = await _joined(a.port, "bob", "#ops")
    await bob.send(type="say", room="#ops", text="still here")
    await alice.until("message", text="still here")
    for conn in (loner, alice, bob):
        await conn.close()


async def test_two_connections_asking_for_one_name_at_once(servers: list[ServeProcess]) -> None:
    a, b = servers
    xavier = await _joined(a.port, "xavier", "#lobby")
    yvonne = await _joined(a.port, "yvonne", "#lobby")
    watcher = await _joined(b.port, "watcher", "#lobby")
    await xavier.send(type="nick", name="carol")
    await yvonne.send(type="nick", name="carol")
    got = []
    for conn in (xavier, yvonne):
        while True:
            frame = await conn.read()
            assert frame is not None
            if frame["type"] == "error" or (frame["type"] == "nick" and frame["new"] == "carol"):
                got.append(frame["type"])
                break
    assert sorted(got) == ["error", "nick"]  # one is carol, the other told it is taken
    wanted = {"carol", "watcher", "yvonne" if got[0] == "nick" else "xavier"}
    await _eventually_who(watcher, "#lobby", wanted)
    pats = [await Wire.hello(a.port, "pat", rooms=["#lobby"]) for _ in range(2)]
    firsts = sorted([(await p.read(10 * FACTOR) or {}).get("type", "") for p in pats])
    assert firsts == ["error", "welcome"]  # at once, not after a handshake timeout
    for conn in (xavier, yvonne, watcher, *pats):
        await conn.close()


async def test_a_nick_then_a_part_and_a_join_before_the_clusters_word(
    servers: list[ServeProcess],
) -> None:
    a, b = servers
    bob = await _joined(b.port, "bob", "#x", "#y")
    alice = await _joined(a.port, "alice", "#x")
    await bob.until("join", name="alice", room="#x")
    alice.writer.write(
        b'{"type":"nick","name":"carol"}\n'
        b'{"type":"part","room":"#x"}\n'
        b'{"type":"join","room":"#y"}\n'
    )
    parted = await bob.until("part", room="#x")
    assert parted["name"] == "carol"  # under the name the cluster gave
    joined = await bob.until("join", room="#y")
    assert joined["name"] == "carol"
    await _eventually_who(bob, "#x", {"bob"})
    await _eventually_who(bob, "#y", {"bob", "carol"})
    await alice.close()
    await _eventually_who(bob, "#y", {"bob"})
    await bob.close()


async def test_a_takeover_with_fewer_rooms_leaves_the_others(
    servers: list[ServeProcess],
) -> None:
    a, b = servers
    first = await Wire.hello(a.port, "alice", rooms=["#lobby", "#a"])
    await first.until("welcome")
    claim = await first.until("claim")
    await first.until("room", room="#a")
    bob = await _joined(b.port, "bob", "#lobby", "#a")
    await _knows_the_claim(b.port, "alice")
    again = await Wire.hello(
        b.port, "alice", rooms=["#lobby"], secret=claim["secret"], replace=True
    )
    state = await again.until("room", room="#lobby")
    # One alice, though the cluster has not yet read her leaving the other server.
    assert sorted(state["users"]) == ["alice", "bob"]
    assert state["online"] == 2
    assert await first.until("error", 10 * FACTOR, code="replaced")
    await _eventually_who(bob, "#a", {"bob"})
    await _eventually_who(bob, "#lobby", {"alice", "bob"})
    await bob.send(type="whois", name="alice", id="wi")
    assert (await bob.until("whois_reply", id="wi"))["rooms"] == ["#lobby"]
    for conn in (first, again, bob):
        await conn.close()


async def test_a_server_given_up_for_dead_finds_its_name_given_away(
    redis: RedisProcess,
) -> None:
    """Stopped longer than its heartbeat lives: its people are taken out, and alice's
    name (not claimed: no history) is given to someone else; back, it closes its own
    alice (name_taken), once."""
    with contextlib.ExitStack() as stack:
        a, b = (ServeProcess("--backplane", redis.url, "--no-history") for _ in range(2))
        stack.callback(a.stop)
        stack.callback(b.stop)
        await _given_away(a, b)


async def _given_away(a: ServeProcess, b: ServeProcess) -> None:
    watcher = await _joined(a.port, "watcher", "#lobby")
    alice = await _joined(b.port, "alice", "#lobby")
    await watcher.until("join", name="alice")
    b.proc.send_signal(signal.SIGSTOP)
    try:
        gone = await watcher.until("leave", 20 * FACTOR, name="alice")
        assert gone["reason"] == "server_gone"
        other = await _joined(a.port, "alice", "#lobby")
    finally:
        b.proc.send_signal(signal.SIGCONT)
    # (It may say first that it lost Redis: its calls timed out while it was stopped.)
    closed = await alice.until("error", 15 * FACTOR, code="name_taken")
    assert "another server" in closed["message"]
    await _eventually_who(watcher, "#lobby", {"watcher", "alice"})
    await watcher.send(type="who", room="#lobby", id="all")
    listed = (await watcher.until("who_reply", id="all"))["users"]
    alices = [u for u in listed if u["name"] == "alice"]
    assert alices == [{"name": "alice"}]  # once, and the one on this server
    wait_until(lambda: '"name":"alice"' in _status(b), 10 * FACTOR, "alice known on b")
    for conn in (watcher, alice, other):
        await conn.close()


async def test_a_server_restarted_at_once_leaves_no_ghosts(
    redis: RedisProcess, tmp_path: Path
) -> None:
    """Killed with -9 and started again on its port at once (as ``serve --workers`` and a
    service manager do): each run is another server to the cluster, so the old run's
    people leave (``server_gone``) when its heartbeat runs out, and nobody stays online."""
    with contextlib.ExitStack() as stack:
        a = ServeProcess("--backplane", redis.url, "--no-history")
        stack.callback(a.stop)
        b = ServeProcess("--backplane", redis.url, "--no-history")
        port = b.port
        watcher = await _joined(a.port, "watcher", "#lobby")
        dave = await _joined(b.port, "dave", "#lobby")
        await watcher.until("join", name="dave")
        b.stop(signal.SIGKILL)
        again = ServeProcess("--backplane", redis.url, "--no-history", port=port)
        stack.callback(again.stop)
        gone = await watcher.until("leave", 10 * FACTOR, name="dave")
        assert gone["reason"] == "server_gone"
        await _eventually_who(watcher, "#lobby", {"watcher"})
        # A newcomer on the restarted server sees only who is there.
        erin = await Wire.hello(again.port, "erin", rooms=["#lobby"])
        state = await erin.until("room", room="#lobby")
        assert sorted(state["users"]) == ["erin", "watcher"]
        assert state["online"] == 2
        for conn in (watcher, dave, erin):
            with contextlib.suppress(OSError, ConnectionError):
                await conn.close()
