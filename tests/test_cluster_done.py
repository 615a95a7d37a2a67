"""Issue 11's "done when", as people would do it: two servers, one Redis, alice in a
real terminal (tmux) given both servers, bob piped on the second; Redis restarted
mid-conversation; alice's server killed: her prompt moves to the second and catches up.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redisproc import RedisProcess, needs_redis, redis
from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    chatctl_command,
    run_chatctl,
    tmux_terminal,
)

pytestmark = [needs_redis, pytest.mark.timeout(120)]
__all__ = ["redis"]


def said_by(name: str, text: str) -> str:
    return rf"^{STAMP} {re.escape(name)}: {re.escape(text)}$"


@contextlib.contextmanager
def piped(name: str, port: int, *args: str) -> Iterator[PipedClient]:
    client = PipedClient(name, port, *args)
    try:
        yield client.joined()
    finally:
        client.proc.kill()
        client.wait()
        client.kill()


def test_two_servers_one_room_through_a_redis_restart_and_a_kill(
    redis: RedisProcess, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        a = ServeProcess("--backplane", redis.url, "--history", str(tmp_path / "a.db"))
        stack.callback(a.stop, signal.SIGKILL)
        b = ServeProcess("--backplane", redis.url, "--history", str(tmp_path / "b.db"))
        stack.callback(b.stop)
        with tmux_terminal() as term, piped("bob", b.port, "--room", "ops") as bob:
            _conversation(term, a, b, bob, redis)


def _conversation(
    term: Terminal, a: ServeProcess, b: ServeProcess, bob: PipedClient, redis: RedisProcess
) -> None:
    servers = ["--server", f"127.0.0.1:{a.port}", "--server", f"127.0.0.1:{b.port}"]
    term.start(*chatctl_command(), "join", "alice", "--room", "ops", *servers)
    term.wait_for(lambda rows: bool(rows) and rows[-1] == "[#ops] alice>", "alice's prompt")
    term.wait_screen(rf"^{STAMP} \* joined chatctl \S+ on 127\.0\.0\.1:{a.port} as alice in #ops")
    bob.out.wait_for(r"\* alice joined$")
    # The same order on both servers.
    term.type("one from alice")
    term.keys("Enter")
    bob.out.wait_for(said_by("alice", "one from alice"))
    bob.send("two from bob")
    bob.out.wait_for(said_by("bob", "two from bob"))
    term.wait_screen(said_by("bob", "two from bob"))
    # status on either server lists both, with their servers.
    for server in (a, b):
        done = run_chatctl("status", "--port", str(server.port), "--json")
        users = {u["name"]: u["server"] for u in json.loads(done.stdout)["users"]}
        assert set(users) == {"alice", "bob"}
        assert users["alice"].endswith(f":{a.port}")
        assert users["bob"].endswith(f":{b.port}")
        table = run_chatctl("status", "--port", str(server.port)).stdout
        assert "cluster: this is" in table
    # Redis restarted mid-conversation: nothing lost, nothing twice.
    redis.stop()
    term.wait_screen(r"lost its backplane \(Redis\)")
    bob.send("three from bob, while redis is away")
    redis.start()
    term.wait_screen(said_by("bob", "three from bob, while redis is away"), timeout=20)
    term.type("four from alice")
    term.keys("Enter")
    bob.out.wait_for(said_by("alice", "four from alice"))
    term.wait_screen(said_by("alice", "four from alice"))
    # Her server is killed: her prompt moves to the other one and catches up.
    a.stop(signal.SIGKILL)
    term.wait_screen(rf"reconnecting to 127\.0\.0\.1:{b.port}…$")
    bob.send("five from bob, while alice moves")
    term.wait_screen(  # at once: her claim's secret takes her name from the dead server
        rf"^{STAMP} \* reconnected to chatctl \S+ on 127\.0\.0\.1:{b.port} as alice in #ops",
        timeout=10,
    )
    assert "attempt" not in term.screen(), term.show()
    term.wait_screen(said_by("bob", "five from bob, while alice moves"), timeout=10)
    term.type("six from alice, on b")
    term.keys("Enter")
    bob.out.wait_for(said_by("alice", "six from alice, on b"))
    term.wait_screen(said_by("alice", "six from alice, on b"))
    # Each line once, in one order, on her screen and in bob's output.
    screen = term.screen()
    order = [
        "one from alice",
        "two from bob",
        "three from bob, while redis is away",
        "four from alice",
        "five from bob, while alice moves",
        "six from alice, on b",
    ]
    for text in order:
        assert screen.count(text) == 1, term.show()
    assert [screen.index(t) for t in order] == sorted(screen.index(t) for t in order)
    seen = bob.out.text()
    assert [seen.index(t) for t in order] == sorted(seen.index(t) for t in order)
    for text in order:
        assert seen.count(f": {text}") == 1, seen
