"""Several servers for one chat (issue 11): ``--server`` repeated and ``CHATCTL_SERVERS``.

Real ``chatctl serve`` processes and real clients. A dead server is a port nobody
listens on (bound to port 0, then freed). The interactive client, in tmux, moves to
the next server when its own is killed with -9, and backs off only once the others
failed.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatctl.addresses import Address, parse_address, parse_servers
from chatctl.client import rounds
from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    chatctl_command,
    run_chatctl,
    tmux_terminal,
)
from tests.test_history_ui import write_history

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(*args: str, port: int = 0) -> Iterator[ServeProcess]:
    server = ServeProcess(*args, port=port)
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


@contextlib.contextmanager
def piped(name: str, port: int) -> Iterator[PipedClient]:
    client = PipedClient(name, port)
    try:
        yield client.joined()
    finally:
        client.proc.kill()
        client.wait()  # its output read to the end before the pipes close
        client.kill()


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with tmux_terminal() as term:
        yield term


def at(port: int) -> str:
    return f"127.0.0.1:{port}"


def said_by(name: str, text: str) -> str:
    return rf"^{STAMP} {re.escape(name)}: {re.escape(text)}$"


# --------------------------------------------------------------------------- first join


def test_piped_join_skips_a_dead_server_and_joins_the_live_one() -> None:
    dead = free_port()
    with serving("--no-history") as live, piped("watcher", live.port) as watcher:
        result = run_chatctl(
            "join", "bot", "--server", at(dead), "--server", at(live.port), input="deployed\n"
        )
        assert result.returncode == 0, result.stderr
        watcher.out.wait_for(said_by("bot", "deployed"))
    skipped = f"chatctl: {at(dead)}: connection refused; trying {at(live.port)}"
    assert result.stderr.splitlines()[0] == skipped, result.stderr
    assert re.search(rf"joined chatctl \S+ on {at(live.port)} as bot in #lobby", result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("{dead},{live}", id="commas"),
        pytest.param(" {dead}  {live} ", id="spaces"),
        pytest.param("{dead}, 127.0.0.1", id="host-alone-at-port"),
    ],
)
def test_chatctl_servers_works_as_the_repeated_option(spelling: str) -> None:
    dead = free_port()
    with serving("--no-history") as live, piped("watcher", live.port) as watcher:
        servers = spelling.format(dead=at(dead), live=at(live.port))
        result = run_chatctl(
            "join", "bot", "--port", str(live.port), input="hello\n", CHATCTL_SERVERS=servers
        )
        assert result.returncode == 0, result.stderr
        watcher.out.wait_for(said_by("bot", "hello"))
    assert f"{at(dead)}: connection refused; trying {at(live.port)}" in result.stderr


def test_every_server_dead_is_the_usual_cannot_connect() -> None:
    first, second = free_port(), free_port()
    result = run_chatctl("join", "bot", "--server", at(first), "--server", at(second), input="")
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"chatctl: {at(first)}: connection refused; trying {at(second)}",
        f"chatctl: cannot reach {at(second)}: connection refused "
        "(is `chatctl serve` running there?)",
    ]


def test_host_typed_beats_chatctl_servers_and_server_typed_beats_both() -> None:
    dead = free_port()
    with serving("--no-history") as live:
        by_host = run_chatctl(
            "join",
            "bot",
            *("--host", "127.0.0.1", "--port", str(live.port)),
            input="",
            CHATCTL_SERVERS=at(dead),
        )
        assert by_host.returncode == 0, by_host.stderr
        assert "connection refused" not in by_host.stderr
        by_server = run_chatctl(
            "join", "bot", "--server", at(live.port), input="", CHATCTL_SERVERS=at(dead)
        )
        assert by_server.returncode == 0, by_server.stderr
        assert "connection refused" not in by_server.stderr


@pytest.mark.parametrize(
    ("args", "variable", "expected"),
    [
        (["--server", "127.0.0.1:x"], "", "--server: '127.0.0.1:x': the port must be a number"),
        (["--server", "host:70000"], "", "'host:70000': the port must be a number from 1 to"),
        (["--server", "::1"], "", "'::1': an IPv6 address goes in brackets, as in [::1]"),
        (["--server", ""], "", "Invalid value for --server: no server given"),
        (["--server", "a", "--host", "b"], "", "--server: cannot go with --host"),
        ([], "a:1,:2", "Invalid value for CHATCTL_SERVERS: ':2' is not HOST, HOST:PORT"),
    ],
    ids=["port-not-a-number", "port-too-big", "bare-ipv6", "empty", "with-host", "variable"],
)
def test_a_bad_server_is_a_usage_error(args: list[str], variable: str, expected: str) -> None:
    extra = {"CHATCTL_SERVERS": variable} if variable else {}
    for command in (["join", "bot"], ["send", "hi"], ["tail"], ["status"]):
        result = run_chatctl(*command, *args, input="", **extra)
        assert result.returncode == 2, (command, result.stderr)
        assert expected in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- one-shot commands


def test_send_tail_and_status_try_the_list_too() -> None:
    dead = free_port()
    with serving("--no-history") as live, piped("watcher", live.port) as watcher:
        servers = ("--server", at(dead), "--server", at(live.port))
        sent = run_chatctl("send", "--as", "ci", "build green", *servers)
        assert sent.returncode == 0, sent.stderr
        assert f"{at(dead)}: connection refused; trying {at(live.port)}" in sent.stderr
        watcher.out.wait_for(said_by("ci", "build green"))
        status = run_chatctl("status", "--json", CHATCTL_SERVERS=f"{at(dead)} {at(live.port)}")
        assert status.returncode == 0, status.stderr
        assert '"name":"watcher"' in status.stdout.replace(" ", ""), status.stdout
        tail = run_chatctl("tail", "--as", "ci", *servers)
        assert tail.returncode == 0, tail.stderr
        assert f"{at(dead)}: connection refused" in tail.stderr


# --------------------------------------------------------------------------- the prompt


def start_alice(term: Terminal, *servers: int) -> None:
    """An interactive ``chatctl join alice --server A --server B ...``, at its prompt."""
    flags = [arg for port in servers for arg in ("--server", at(port))]
    term.start(*chatctl_command(), "join", "alice", *flags)
    term.wait_for(lambda rows: bool(rows) and rows[-1] == "[#lobby] alice>", "alice's prompt")


def test_killed_server_the_prompt_moves_to_the_next_and_chats_there(terminal: Terminal) -> None:
    with serving("--no-history") as first, serving("--no-history") as second:
        a, b = first.port, second.port
        start_alice(terminal, a, b)
        terminal.wait_screen(rf"^{STAMP} \* joined chatctl \S+ on {at(a)} as alice in #lobby; ")
        first.stop(signal.SIGKILL)
        terminal.wait_screen(
            rf"^{STAMP} \* connection to {at(a)} lost; reconnecting to {at(b)}…$\n"
            rf"{STAMP} \* reconnected to chatctl \S+ on {at(b)} as alice in #lobby; "
            r"online: nobody else yet\.$"
        )
        assert "attempt" not in terminal.screen(), terminal.show()  # the next one at once
        with piped("bob", b) as bob:
            terminal.wait_screen(rf"^{STAMP} \* bob joined$")
            terminal.type("hello from alice")
            terminal.keys("Enter")
            bob.out.wait_for(said_by("alice", "hello from alice"))
            bob.send("hello from bob")
            terminal.wait_screen(said_by("bob", "hello from bob"))
    assert "EXIT=" not in terminal.screen(), terminal.show()


def test_it_backs_off_once_the_others_failed(terminal: Terminal) -> None:
    with serving("--no-history") as first, serving("--no-history") as second:
        a, b = first.port, second.port
        start_alice(terminal, a, b)
        second.stop(signal.SIGKILL)  # unnoticed: alice is on the first
        first.stop(signal.SIGKILL)
    # Lost a: b at once; then, after a backoff, b and a (the lost one last) each round.
    terminal.wait_screen(
        rf"^{STAMP} \* connection to {at(a)} lost; reconnecting to {at(b)}…$\n"
        rf"{STAMP} \* attempt 1 failed on {at(b)}: connection refused; trying {at(b)} in 1 s…$"
    )
    terminal.wait_screen(
        rf"^{STAMP} \* attempt 2 failed on {at(b)}: connection refused; trying {at(a)}…$\n"
        rf"{STAMP} \* attempt 3 failed on {at(a)}: connection refused; trying {at(b)} in 2 s…$",
        timeout=5,
    )
    with serving("--no-history", port=a):
        terminal.wait_screen(
            rf"^{STAMP} \* reconnected to chatctl \S+ on {at(a)} as alice in #lobby; ",
            timeout=10,
        )


def test_the_next_server_replays_only_what_was_missed(terminal: Terminal, tmp_path: Path) -> None:
    """Servers of one cluster keep the same history, with the same ``seq``: here the second
    is started, on another port, on the file the killed first one kept."""
    path = tmp_path / "h.sqlite3"
    a, b = free_port(), free_port()
    with serving("--history", str(path), port=a) as first:
        start_alice(terminal, a, b)
        with piped("bob", a) as bob:
            bob.send("seen before the loss")
            terminal.wait_screen(said_by("bob", "seen before the loss"))
        first.stop(signal.SIGKILL)
    terminal.wait_screen(rf"^{STAMP} \* connection to {at(a)} lost; reconnecting to {at(b)}…$")
    write_history(path, ["missed one", "missed two"], time.time() - 2, name="bob")
    with serving("--history", str(path), port=b):
        terminal.wait_screen(
            rf"^{STAMP} \* reconnected to chatctl \S+ on {at(b)} as alice in #lobby; .*\n"
            rf"{STAMP} bob: missed one\n{STAMP} bob: missed two$",
            timeout=20,
        )
        screen = terminal.screen()
        for text in ("seen before the loss", "missed one", "missed two"):
            assert screen.count(text) == 1, terminal.show()


def test_the_projector_moves_to_the_next_server(terminal: Terminal) -> None:
    with serving("--no-history") as first, serving("--no-history") as second:
        a, b = first.port, second.port
        flags = ("--server", at(a), "--server", at(b))
        terminal.start(*chatctl_command(), "join", "screen", "--read-only", *flags)
        terminal.wait_screen(r"^read-only: q or Ctrl-C closes it$")
        first.stop(signal.SIGKILL)
        terminal.wait_screen(rf"^{STAMP} \* connection lost; reconnecting to {at(b)}…$")
        with piped("bob", b) as bob:
            terminal.wait_screen(rf"^{STAMP} \* bob joined$")
            bob.send("on the second one")
            terminal.wait_screen(said_by("bob", "on the second one"))


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org:5001", Address("example.org", 5001)),
        ("example.org", Address("example.org", 5000)),
        ("[::1]:5002", Address("::1", 5002)),
        ("[::1]", Address("::1", 5000)),
    ],
)
def test_addresses_as_typed(text: str, expected: Address) -> None:
    assert parse_address(text, 5000) == expected


def test_an_ipv6_address_is_shown_in_brackets() -> None:
    assert str(Address("::1", 5002)) == "[::1]:5002"
    assert str(Address("127.0.0.1", 5002)) == "127.0.0.1:5002"


def test_a_list_keeps_its_order_and_each_server_once() -> None:
    assert parse_servers(["b:2, a:1", "b:2 c"], 9) == [
        Address("b", 2),
        Address("a", 1),
        Address("c", 9),
    ]


def test_rounds_go_to_the_others_at_once_and_back_off_before_the_lost_one() -> None:
    plan = rounds(3, 1, iter([1.0, 2.0]))
    assert [next(plan) for _ in range(8)] == [
        (2, 0.0),
        (0, 0.0),
        (2, 1.0),
        (0, 0.0),
        (1, 0.0),
        (2, 2.0),
        (0, 0.0),
        (1, 0.0),
    ]
    single = rounds(1, 0, iter([1.0, 2.0]))
    assert [next(single) for _ in range(2)] == [(0, 1.0), (0, 2.0)]
