"""The ``chatctl`` command as a user runs it: real processes, real sockets on 127.0.0.1.

Servers listen on ephemeral ports; clients are piped ``chatctl join`` processes
whose stdin the test keeps open or closes. Every wait has a deadline.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from chatctl import __version__
from tests.support import (
    FACTOR,
    PipedClient,
    ServeProcess,
    env,
    run_chatctl,
    serve_process,
)

STAMP = r"\[\d{2}:\d{2}:\d{2}\]"
LOG_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")
SHUTDOWN_NOTICE = re.compile(rf"^{STAMP} \* the server is shutting down$", re.MULTILINE)


@pytest.fixture
def clients() -> Iterator[list[PipedClient]]:
    """Collects the clients a test starts and kills whatever is still running at the end."""
    started: list[PipedClient] = []
    try:
        yield started
    finally:
        for client in started:
            client.kill()


def join(clients: list[PipedClient], name: str, port: int) -> PipedClient:
    client = PipedClient(name, port)
    clients.append(client)
    return client.joined()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: bound but not listening, so nobody else takes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def status_json(port: int, **env_extra: str) -> dict[str, object]:
    result = run_chatctl("status", "--port", str(port), "--json", timeout=10, **env_extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1, result.stdout
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def messages_relayed(port: int) -> int:
    server = status_json(port)["server"]
    assert isinstance(server, dict)
    return int(server["messages_relayed"])


def assert_no_traceback(*outputs: str) -> None:
    for output in outputs:
        assert "Traceback" not in output, output
        assert "Fatal Python error" not in output, output


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Errors: nothing on stdout, exactly one line on stderr, no traceback."""
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("chatctl: "), lines[0]
    return lines[0]


# --------------------------------------------------------------------------- conversation


def test_two_piped_clients_and_status_json(serve: ServeProcess, clients: list[PipedClient]) -> None:
    bob = join(clients, "bob", serve.port)

    alice = run_chatctl("join", "alice", "--port", str(serve.port), input="hello\n\n   \nsecond\n")
    assert alice.returncode == 0, alice.stderr
    assert_no_traceback(alice.stdout, alice.stderr)
    assert "joined chatctl" in alice.stderr  # session notes on stderr, conversation on stdout
    assert re.search(rf"^{STAMP} alice: hello$", alice.stdout, re.MULTILINE), alice.stdout

    bob.out.wait_for(rf"^{STAMP} \* alice left$")
    said = [line for line in bob.out.snapshot() if re.match(rf"{STAMP} alice: ", line)]
    assert len(said) == 2, bob.out.text()
    assert re.fullmatch(rf"{STAMP} alice: hello", said[0])
    assert re.fullmatch(rf"{STAMP} alice: second", said[1])
    assert not any(re.fullmatch(rf"{STAMP} alice: \s*", line) for line in bob.out.snapshot())

    data = status_json(serve.port)
    server, users = data["server"], data["users"]
    assert isinstance(server, dict)
    assert isinstance(users, list)
    assert server["messages_relayed"] == 2  # the blank lines were not sent
    assert server["users"] == 1
    assert all(isinstance(u, dict) for u in users)
    assert [u["name"] for u in users] == ["bob"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", users[0]["address"])

    bob.close_stdin()
    assert bob.wait() == 0, bob.everything()
    assert_no_traceback(bob.everything())
    serve.log.wait_for(r"- bob left \(quit\)")


def test_echo_into_join_just_works(serve: ServeProcess, clients: list[PipedClient]) -> None:
    watcher = join(clients, "watcher", serve.port)
    result = run_chatctl("join", "ci", "--port", str(serve.port), input="deploy done\n")
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    watcher.out.wait_for(rf"^{STAMP} ci: deploy done$")
    watcher.out.wait_for(rf"^{STAMP} \* ci left$")


def test_exit_line_leaves_and_later_lines_are_not_sent(
    serve: ServeProcess, clients: list[PipedClient]
) -> None:
    watcher = join(clients, "watcher", serve.port)
    result = run_chatctl(
        "join", "alice", "--port", str(serve.port), input="one\nexit\ntwo\n/quit\nthree\n"
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    watcher.out.wait_for(rf"^{STAMP} \* alice left$")
    assert messages_relayed(serve.port) == 1
    text = watcher.out.text()
    assert re.search(rf"^{STAMP} alice: one$", text, re.MULTILINE), text
    assert "two" not in text
    assert "three" not in text
    serve.log.wait_for(r"- alice left \(quit\)")


def test_slash_quit_leaves_too(serve: ServeProcess) -> None:
    result = run_chatctl("join", "alice", "--port", str(serve.port), input="/quit\nnever\n")
    assert result.returncode == 0, result.stderr
    serve.log.wait_for(r"- alice left \(quit\)")
    assert messages_relayed(serve.port) == 0


# --------------------------------------------------------------------------- error exit codes


def test_unreachable_join_exits_3(closed_port: int) -> None:
    result = run_chatctl("join", "alice", "--port", str(closed_port), timeout=15, COLUMNS="80")
    assert result.returncode == 3
    line = assert_one_error_line(result)
    assert f"127.0.0.1:{closed_port}" in line


def test_unreachable_status_exits_3(closed_port: int) -> None:
    for args in (["status"], ["status", "--json"]):
        result = run_chatctl(*args, "--port", str(closed_port), timeout=15, COLUMNS="80")
        assert result.returncode == 3, result.stderr
        line = assert_one_error_line(result)
        assert f"127.0.0.1:{closed_port}" in line
        assert "refused" in line


def test_name_taken_exits_4(serve: ServeProcess, clients: list[PipedClient]) -> None:
    join(clients, "bob", serve.port)
    for taken in ("bob", "BOB"):  # names are unique without regard to case
        result = run_chatctl("join", taken, "--port", str(serve.port), input="hi\n", COLUMNS="80")
        assert result.returncode == 4, result.stderr
        line = assert_one_error_line(result)
        assert "taken" in line
    serve.log.wait_for(r"refused 127\.0\.0\.1:\d+: name_taken")
    assert messages_relayed(serve.port) == 0


@pytest.mark.parametrize("name", ["bad name", "алиса", "a" * 33, "", "x\x1b[2J", "[b]x"])
def test_invalid_name_exits_5(serve: ServeProcess, name: str) -> None:
    result = run_chatctl("join", "--port", str(serve.port), "--", name, input="hi\n", COLUMNS="80")
    assert result.returncode == 5, result.stderr
    line = assert_one_error_line(result)
    assert "name" in line
    assert "\x1b" not in result.stderr


def test_longest_valid_name_is_accepted(serve: ServeProcess) -> None:
    result = run_chatctl("join", "a" * 32, "--port", str(serve.port), input="")
    assert result.returncode == 0, result.stderr


def test_serve_on_a_port_in_use_exits_9(serve: ServeProcess) -> None:
    result = run_chatctl(
        "serve", "--host", "127.0.0.1", "--port", str(serve.port), timeout=10, COLUMNS="80"
    )
    assert result.returncode == 9, result.stdout + result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, (
        f"expected the reason as one line on stderr; stdout={result.stdout!r} "
        f"stderr={result.stderr!r}"
    )
    assert "cannot listen" in lines[0]
    assert str(serve.port) in lines[0]
    assert "address already in use" in lines[0].lower()


@pytest.mark.parametrize(
    "args",
    [
        ["join"],
        ["join", "alice", "--port", "not-a-port"],
        ["join", "alice", "--port", "70000"],
        ["status", "--no-such-option"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_chatctl(*args, timeout=10)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Usage: chatctl" in result.stderr


def test_server_shutdown_while_piped_client_is_connected_exits_7(
    clients: list[PipedClient],
) -> None:
    with serve_process() as server:
        bob = join(clients, "bob", server.port)  # stdin stays open: bob is waiting for input
        server.proc.send_signal(signal.SIGTERM)
        bob.wait_for_anywhere(SHUTDOWN_NOTICE)
        code = bob.wait()
        assert_no_traceback(bob.everything())
        assert code == 7, f"exit {code}\n{bob.everything()}"
        assert server.proc.wait(5 * FACTOR) == 0  # a second signal now would kill it


def test_server_killed_while_piped_client_is_connected_exits_6(
    clients: list[PipedClient],
) -> None:
    with serve_process() as server:
        bob = join(clients, "bob", server.port)
        server.proc.kill()
        server.proc.wait(5 * FACTOR)
        code = bob.wait()
        assert_no_traceback(bob.everything())
        assert code == 6, f"exit {code}\n{bob.everything()}"
        lost = [line for line in bob.everything().splitlines() if "lost" in line]
        assert len(lost) == 1, bob.everything()
        assert f"127.0.0.1:{server.port}" in lost[0]
        # README: notes about the session (welcome, errors) go to stderr, so stdout
        # carries only the conversation.
        assert not any("lost" in line for line in bob.out.snapshot()), (
            f"the error went to stdout:\n{bob.out.text()}"
        )
        assert "shutting down" not in bob.everything()


# --------------------------------------------------------------------------- server lifecycle


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_signal(sig: signal.Signals, clients: list[PipedClient]) -> None:
    server = ServeProcess()
    try:
        port = server.port
        alice = join(clients, "alice", port)
        bob = join(clients, "bob", port)
        alice.send("still typing")  # a line at a time while stdin stays open
        bob.out.wait_for(rf"^{STAMP} alice: still typing$")
        start = time.monotonic()
        server.proc.send_signal(sig)
        code = server.proc.wait(2 * FACTOR)
        elapsed = time.monotonic() - start
        assert code == 0, server.log.text()
        assert elapsed < 2 * FACTOR
        server.log.join()
        log = server.log.text()
        assert_no_traceback(log)
        assert "shutting down, 2 users notified" in log
        assert re.search(r"stopped$", log), log
        for client in (alice, bob):
            client.wait_for_anywhere(SHUTDOWN_NOTICE)
            client.proc.wait(5 * FACTOR)  # the client goes by itself, stdin still open
    finally:
        server.stop()

    with serve_process("--port", str(port)) as again:  # the port is free at once
        assert again.port == port
        assert status_json(port)["users"] == []


def test_serve_log_is_plain_without_a_terminal(
    serve: ServeProcess, clients: list[PipedClient]
) -> None:
    bob = join(clients, "bob", serve.port)
    said = run_chatctl("join", "alice", "--port", str(serve.port), input="secret-text-42\n")
    assert said.returncode == 0, said.stderr
    bob.out.wait_for(r"alice: secret-text-42$")
    taken = run_chatctl("join", "Bob", "--port", str(serve.port), input="")
    assert taken.returncode == 4
    bob.close_stdin()
    assert bob.wait() == 0
    serve.log.wait_for(r"- bob left \(quit\)")
    assert serve.stop() == 0

    lines = serve.log.snapshot()
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert lines, text
    for line in lines:
        assert LOG_STAMP.match(line), repr(line)
        assert len(line) == len(line.rstrip()), f"padded line: {line!r}"
    assert re.search(r"listening on 127\.0\.0\.1:\d+ \(this machine only\)", text)
    assert re.search(r"\+ bob joined from 127\.0\.0\.1:\d+", text)
    assert re.search(r"\+ alice joined from 127\.0\.0\.1:\d+", text)
    assert re.search(r"- bob left \(quit\)", text)
    assert re.search(r"refused 127\.0\.0\.1:\d+: name_taken", text)
    assert "secret-text-42" not in text  # message text is private by default
    assert_no_traceback(text)


def test_serve_verbose_logs_message_text() -> None:
    with serve_process("--verbose") as server:
        result = run_chatctl("join", "ci", "--port", str(server.port), input="deploy done\n")
        assert result.returncode == 0, result.stderr
        server.log.wait_for(r"- ci left \(quit\)")
        line = server.log.wait_for(r"ci: deploy done$").string
        assert LOG_STAMP.match(line)
        assert "\x1b" not in server.log.text()


# --------------------------------------------------------------------------- environment, version


def test_env_vars_are_honoured(serve: ServeProcess, closed_port: int) -> None:
    port = str(serve.port)
    result = run_chatctl("status", "--json", timeout=10, CHATCTL_PORT=port)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["server"]["version"] == __version__

    result = run_chatctl(
        "join", "envy", input="from env\n", CHATCTL_HOST="127.0.0.1", CHATCTL_PORT=port
    )
    assert result.returncode == 0, result.stderr
    assert messages_relayed(serve.port) == 1
    serve.log.wait_for(r"\+ envy joined from 127\.0\.0\.1:")

    # The host comes from CHATCTL_HOST: nothing listens on 127.0.0.2.
    for args in (["status"], ["join", "envy"]):
        result = run_chatctl(*args, timeout=10, CHATCTL_HOST="127.0.0.2", CHATCTL_PORT=port)
        assert result.returncode == 3, result.stderr
        assert f"127.0.0.2:{port}" in result.stderr

    # An explicit option beats the environment.
    result = run_chatctl("status", "--port", str(closed_port), timeout=10, CHATCTL_PORT=port)
    assert result.returncode == 3, result.stderr


def test_version() -> None:
    result = run_chatctl("--version", timeout=10)
    assert result.returncode == 0
    assert result.stdout == f"chatctl {__version__}\n"
    module = subprocess.run(
        [sys.executable, "-m", "chatctl", "--version"],
        capture_output=True,
        text=True,
        timeout=10 * FACTOR,
        env=env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout == f"chatctl {__version__}\n"


def test_status_table_shows_user_names(serve: ServeProcess, clients: list[PipedClient]) -> None:
    join(clients, "bob", serve.port)
    join(clients, "Carol.2", serve.port)
    result = run_chatctl("status", "--port", str(serve.port), timeout=10, COLUMNS="120")
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    assert "\x1b" not in result.stdout  # not a terminal: no colour codes
    assert re.search(r"\bname\b", result.stdout)
    assert re.search(r"\bbob\b", result.stdout)
    assert "Carol.2" in result.stdout
    assert "2 users" in result.stdout
    everyone = run_chatctl("status", "--all", "--port", str(serve.port), timeout=10)
    assert everyone.returncode == 0, everyone.stderr
    assert "Carol.2" in everyone.stdout
