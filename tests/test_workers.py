"""``serve --workers N``: N real server processes on one port, one chat, supervised.

A real ``chatctl serve --workers 2`` (the supervisor) and its two workers, a real Redis
(tests/redisproc.py) and raw clients (tests/wire.py, tests/ircwire.py). Which worker the
kernel gives a connection is its choice (``SO_REUSEPORT`` hashes the addresses), so the
tests connect until each worker has someone, within a bound, rather than assume a spread.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ircwire import Irc
from tests.redisproc import RedisProcess, free_port, needs_redis, redis
from tests.support import FACTOR, ServeProcess, run_chatctl, wait_until
from tests.wire import Wire, welcomed

pytestmark = pytest.mark.timeout(120)
__all__ = ["redis"]

UP = r"listening on 127\.0\.0\.1:\d+.* with 2 workers"
STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")
#: Most connections made to find someone on each worker: 2 workers, 1 in 2 each time.
TRIES = 40


def _workers(redis: RedisProcess, tmp_path: Path, *args: str) -> ServeProcess:
    server = ServeProcess(
        "--workers", "2", "--backplane", redis.url, "--history", str(tmp_path / "h.db"),
        *args, port=free_port(),
    )  # fmt: skip
    server.log.wait_for(UP, 30)
    return server


@pytest.fixture
def workers(redis: RedisProcess, tmp_path: Path) -> Iterator[ServeProcess]:
    server = _workers(redis, tmp_path)
    try:
        yield server
    finally:
        server.stop(timeout=20)


def _started(server: ServeProcess) -> list[tuple[int, int]]:
    """Every (worker, pid) the supervisor started, in order."""
    found = (STARTED.search(line) for line in server.log.snapshot())
    return [(int(m.group(1)), int(m.group(2))) for m in found if m]


def _pids(server: ServeProcess) -> dict[int, int]:
    """Each worker's latest pid."""
    return dict(_started(server))


def _parent(pid: int) -> int | None:
    """``pid``'s parent, None if it is gone (or a zombie, as good as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if re.search(r"^State:\s+Z", status, re.M):
        return None
    match = re.search(r"^PPid:\s+(\d+)", status, re.M)
    return int(match.group(1)) if match else None


def _users(port: int) -> dict[str, dict[str, Any]]:
    done = run_chatctl("status", "--port", str(port), "--json")
    assert done.returncode == 0, done.stderr
    return {u["name"]: u for u in json.loads(done.stdout)["users"]}


def _listed(port: int, name: str) -> dict[str, Any]:
    """``name``'s entry in the status, once it has one."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [u for n, u in _users(port).items() if n == name]
        return bool(found)

    wait_until(seen, 10, f"{name} in the status")
    return found[0]


async def _spread(port: int, prefix: str, at_least: int, irc: int | None = None) -> list[Any]:
    """Clients named ``prefix0``, ``prefix1``... (``Wire`` in ``#ops``, or IRC on ``irc``),
    at least ``at_least`` and until both workers have one (the status lists them all)."""
    conns: list[Any] = []
    users: dict[str, dict[str, Any]] = {}

    def listed() -> bool:
        users.clear()
        users.update(_users(port))
        return len(users) == len(conns)

    while len({u["server"] for u in users.values()}) < 2 or len(conns) < at_least:
        assert len(conns) < TRIES, f"all {len(conns)} clients on one worker: {users}"
        name = f"{prefix}{len(conns)}"
        if irc is None:
            conn: Any = await Wire.hello(port, name, rooms=["#ops"])
            await welcomed(conn, "#ops")
        else:
            conn = await Irc.registered(irc, name)
        conns.append(conn)
        if len(conns) >= at_least:
            wait_until(listed, 10, f"{len(conns)} users listed")
    return conns


@needs_redis
async def test_two_workers_share_the_port_and_the_rooms(workers: ServeProcess) -> None:
    pids = _pids(workers)
    assert sorted(pids) == [1, 2]
    assert len(set(pids.values())) == 2
    for pid in pids.values():  # the supervisor's own children
        assert _parent(pid) == workers.proc.pid
    conns = await _spread(workers.port, "u", 20)
    users = _users(workers.port)
    servers = sorted({u["server"] for u in users.values()})
    assert [re.sub(r".*:\d+/", "", s) for s in servers] == ["w1", "w2"], servers
    on = {s: [n for n, u in users.items() if u["server"] == s] for s in servers}
    sender, listener = on[servers[0]][0], on[servers[1]][0]
    by_name = dict(zip((f"u{i}" for i in range(len(conns))), conns, strict=True))
    await by_name[sender].send(type="say", room="#ops", text="across workers", id="x1")
    heard = await by_name[listener].until("message", 10 * FACTOR, text="across workers")
    assert heard["name"] == sender
    for conn in conns:
        await conn.close()
    code = workers.stop(signal.SIGTERM, timeout=20)
    assert code == 0, workers.log.text()
    for pid in pids.values():  # no orphan: every worker is gone with it
        assert _parent(pid) is None, pid
    assert re.search(r"^\S+ \S+ stopped$", workers.log.text(), re.M)


@needs_redis
async def test_a_killed_worker_is_restarted_and_its_people_leave(workers: ServeProcess) -> None:
    conns = await _spread(workers.port, "k", 4)
    users = _users(workers.port)
    pids = _pids(workers)
    victim = 2
    gone = [n for n, u in users.items() if u["server"].endswith(f"/w{victim}")]
    stay = [n for n, u in users.items() if not u["server"].endswith(f"/w{victim}")]
    by_name = dict(zip((f"k{i}" for i in range(len(conns))), conns, strict=True))
    os.kill(pids[victim], signal.SIGKILL)
    workers.log.wait_for(rf"worker {victim} \(pid {pids[victim]}\) died: signal 9; restarting")
    watcher = by_name[stay[0]]
    for name in gone:  # told by the cluster: the killed worker's people left
        left = await watcher.until("leave", 15 * FACTOR, name=name)
        assert left["reason"] == "server_gone", left
    wait_until(lambda: _pids(workers)[victim] != pids[victim], 15, "a new worker 2")
    again = _pids(workers)[victim]
    assert _parent(again) == workers.proc.pid
    assert _parent(pids[victim]) is None
    wait_until(
        lambda: sum("[w2] listening on" in line for line in workers.log.snapshot()) == 2,
        15,
        "the new worker 2 listening",
    )
    # A new connection reaches the new worker 2 (it is in the cluster: status names it).
    fresh: list[Wire] = []
    while True:
        assert len(fresh) < TRIES, "no new connection reached the new worker 2"
        name = f"n{len(fresh)}"
        conn = await Wire.hello(workers.port, name, rooms=["#ops"])
        await welcomed(conn, "#ops")
        fresh.append(conn)
        if _listed(workers.port, name)["server"].endswith(f"/w{victim}"):
            break
    for conn in conns + fresh:
        await conn.close()


@needs_redis
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_no_worker_outlives_a_killed_supervisor(redis: RedisProcess, tmp_path: Path) -> None:
    server = _workers(redis, tmp_path)
    try:
        pids = _pids(server)
        server.proc.send_signal(signal.SIGKILL)  # no chance to stop them: the kernel tells them
        server.proc.wait(10 * FACTOR)
        wait_until(lambda: all(_parent(p) is None for p in pids.values()), 15, "workers gone")
    finally:
        server.stop()


def test_workers_need_a_backplane_and_a_fixed_port() -> None:
    alone = run_chatctl("serve", "--port", str(free_port()), "--workers", "2", timeout=10)
    assert alone.returncode == 2
    assert "--workers: needs --backplane" in alone.stderr
    assert "separate chat" in alone.stderr
    url = "redis://127.0.0.1:1/0"
    ephemeral = run_chatctl("serve", "--port", "0", "--workers", "2", "--backplane", url)
    assert ephemeral.returncode == 2
    assert "needs a fixed --port" in ephemeral.stderr
    from_env = run_chatctl("serve", "--port", "0", CHATCTL_WORKERS="3", timeout=10)
    assert from_env.returncode == 2
    assert "needs --backplane" in from_env.stderr


def test_a_worker_that_cannot_start_stops_them_all_exit_9(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = run_chatctl(
        "serve", "--port", str(free_port()), "--workers", "2", "--backplane", url,
        "--history", str(tmp_path / "h.db"),
    )  # fmt: skip
    assert done.returncode == 9, done.stdout + done.stderr
    assert re.search(r"worker \d \(pid \d+\) could not start: exit 9", done.stdout), done.stdout
    assert "cannot use the backplane" in done.stderr
    assert "Traceback" not in done.stderr
    for match in STARTED.finditer(done.stdout):
        assert _parent(int(match.group(2))) is None


def _free_pair() -> int:
    """A port P with P + 1 free too (worker 2's metrics port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports in a row")


@needs_redis
async def test_irc_metrics_json_log_and_sighup(redis: RedisProcess, tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    ops.write_text("alice\n")
    irc, metrics = free_port(), _free_pair()
    server = _workers(
        redis, tmp_path, "--irc", str(irc), "--metrics", str(metrics),
        "--ops-file", str(ops), "--log-format", "json",
    )  # fmt: skip
    try:
        records = [json.loads(line) for line in server.log.snapshot()]
        assert all(list(r)[:4] == ["ts", "level", "event", "message"] for r in records)
        up = [r for r in records if r["event"] == "workers_listening"]
        assert up[0]["workers"] == 2
        assert up[0]["irc"] == [{"host": "127.0.0.1", "port": irc}]
        listening = sorted(r["worker"] for r in records if r["event"] == "listening")
        assert listening == [1, 2]
        urls = {r["worker"]: r["url"] for r in records if r["event"] == "metrics"}
        assert urls == {w: f"http://127.0.0.1:{metrics + w - 1}/metrics" for w in (1, 2)}
        conns = await _spread(server.port, "i", 2, irc=irc)  # the IRC port is shared too
        assert all(u["irc"] for u in _users(server.port).values())
        ops.write_text("alice\nbob\n")
        server.proc.send_signal(signal.SIGHUP)

        def reloaded() -> set[int]:
            found = (json.loads(line) for line in server.log.snapshot())
            return {r["worker"] for r in found if r.get("names") == ["alice", "bob"]}

        wait_until(lambda: reloaded() == {1, 2}, 10, "both workers reading the ops file")
        for conn in conns:
            await conn.close()
    finally:
        assert server.stop(timeout=20) == 0
