"""``serve --log-format json`` and ``serve --metrics``, as an operator uses them.

Real ``chatctl serve`` processes, real piped clients, ``/metrics`` fetched over HTTP
and read with prometheus_client's own parser; every wait has a deadline.
docs/operations.md documents what these tests check.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatctl import __version__
from chatctl.exitcodes import ExitCode
from chatctl.server.config import ServerConfig
from chatctl.server.events import ServerEvent, UserLeft
from chatctl.ui.jsonlog import event_name
from tests.redisproc import RedisProcess, needs_redis, redis
from tests.support import (
    FACTOR,
    ROOT,
    PipedClient,
    ServeProcess,
    chatctl_command,
    env,
    run_chatctl,
    serve_process,
    wait_until,
)
from tests.wire import Wire

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis"]  # the fixture

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SNAKE = re.compile(r"[a-z]+(?:_[a-z]+)*")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def clients() -> Iterator[list[PipedClient]]:
    started: list[PipedClient] = []
    try:
        yield started
    finally:
        for client in started:
            client.kill()


def joined(clients: list[PipedClient], name: str, port: int, *args: str) -> PipedClient:
    client = PipedClient(name, port, *args)
    clients.append(client)
    return client.joined()


def records(server: ServeProcess) -> list[dict[str, object]]:
    """Every line of a JSON log, parsed: each one a JSON object, with the keys it must have."""
    out = []
    for line in server.log.snapshot():
        assert all(ord(c) >= 0x20 for c in line), repr(line)  # no escape code, no raw newline
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert list(record)[:4] == ["ts", "level", "event", "message"], line
        assert RFC3339_MS.fullmatch(str(record["ts"])), line
        assert record["level"] in {"info", "warning", "error"}, line
        assert SNAKE.fullmatch(str(record["event"])), line
        out.append(record)
    return out


def assert_documented(name: str) -> None:
    """docs/operations.md names every JSON log event and every metric (in backquotes)."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    assert re.search(rf"`{name}(_total)?[`{{]", doc), f"{name} is not in docs/operations.md"


def of(found: list[dict[str, object]], event: str) -> list[dict[str, object]]:
    return [r for r in found if r["event"] == event]


# --------------------------------------------------------------------------- --log-format json


def test_json_log_one_object_per_event_with_stable_keys(clients: list[PipedClient]) -> None:
    with serve_process("--log-format", "json", "--verbose") as server:
        bob = joined(clients, "bob", server.port)
        alice = joined(clients, "alice", server.port, "--commands")
        alice.send('said "quoted" \\ and \x1b[31mred')
        alice.send("/msg bob private-text-42")
        bob.out.wait_for(r"private-text-42")
        taken = run_chatctl("join", "Bob", "--port", str(server.port), input="")
        assert taken.returncode == ExitCode.NAME_TAKEN
        alice.close_stdin()
        assert alice.wait() == 0
        server.log.wait_for(r'"event":"user_left".*"name":"alice"')
        assert server.stop() == 0

    found = records(server)
    (listening,) = of(found, "listening")
    assert listening["addresses"] == [{"host": "127.0.0.1", "port": server.port}]
    assert listening["message"] == f"listening on 127.0.0.1:{server.port} (this machine only)"
    joins = {r["name"]: r for r in of(found, "user_joined")}
    assert set(joins) == {"bob", "alice"}
    assert re.fullmatch(r"127\.0\.0\.1:\d+", str(joins["alice"]["address"]))
    assert {(r["name"], r["room"]) for r in of(found, "room_entered")} >= {("bob", "#lobby")}
    (said,) = of(found, "message_relayed")
    assert said["name"] == "alice"
    assert said["room"] == "#lobby"
    assert said["action"] is False
    assert str(said["text"]).startswith('said "quoted" \\ and ')  # escaped, and read back
    (refused,) = of(found, "refused")
    assert refused["code"] == "name_taken"
    assert refused["level"] == "warning"
    left = {r["name"]: r for r in of(found, "user_left")}
    assert (left["alice"]["reason"], left["alice"]["level"]) == ("quit", "info")
    assert left["bob"]["reason"] == "shutdown"
    events = [r["event"] for r in found]
    assert events[-1] == "stopped"
    assert events.index("stopping") < events.index("user_left", events.index("stopping"))
    assert of(found, "stopping")[0]["level"] == "info"
    assert of(found, "capacity")[0]["max_clients"] == ServerConfig().max_clients
    for record in found:
        assert_documented(str(record["event"]))
    raw = server.log.text()
    assert "private-text-42" not in raw  # private messages are never logged
    assert "\x1b" not in raw


def test_json_log_from_the_environment_without_verbose_keeps_texts_out(
    clients: list[PipedClient],
) -> None:
    server = ServeProcess(extra_env={"CHATCTL_LOG_FORMAT": "json"})
    try:
        said = run_chatctl("join", "ci", "--port", str(server.port), input="secret-text-7\n")
        assert said.returncode == 0, said.stderr
        server.log.wait_for(r'"event":"user_left".*"name":"ci"')
    finally:
        server.stop()
    found = records(server)
    assert of(found, "user_joined")[0]["name"] == "ci"
    assert not of(found, "message_relayed")
    assert "secret-text-7" not in server.log.text()


# --------------------------------------------------------------------------- --metrics


def scrape(url: str) -> Samples:
    """``/metrics`` over HTTP, through prometheus_client's parser: every sample by name and
    labels."""
    with urllib.request.urlopen(url, timeout=5 * FACTOR) as response:  # noqa: S310  http://127.0.0.1
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), -1.0)


def metrics_url(server: ServeProcess) -> str:
    url = server.log.wait_for(r"metrics on (http://127\.0\.0\.1:\d+/metrics)").group(1)
    assert int(url.rsplit(":", 1)[1].split("/")[0]) != server.port
    return url


def test_metrics_move_as_people_join_speak_and_leave(
    tmp_path: Path, clients: list[PipedClient]
) -> None:
    history = tmp_path / "history.sqlite3"
    with serve_process("--metrics", "0", "--history", str(history)) as server:
        url = metrics_url(server)
        before = scrape(url)
        assert value(before, "chatctl_users") == 0
        assert value(before, "chatctl_rooms") == 1
        assert value(before, "chatctl_info", version=__version__, server=f"127.0.0.1:{server.port}")
        assert value(before, "chatctl_history_write_seconds_count") >= 0
        assert value(before, "chatctl_event_loop_lag_seconds") >= 0
        assert value(before, "process_resident_memory_bytes") > 0
        assert not [name for name, _ in before if name.startswith("chatctl_backplane")]
        for name, _ in before:
            if name.startswith("chatctl_"):
                assert_documented(re.sub(r"_(bucket|count|sum)$", "", name))

        alice = joined(clients, "alice", server.port, "--room", "ops")
        alice.send("hello ops")
        alice.out.wait_for(r"alice: hello ops$")

        def spoke() -> bool:
            now = scrape(url)
            return value(now, "chatctl_messages_received_total", room="#ops") >= 1

        wait_until(spoke, 10, "a message counted in #ops")
        now = scrape(url)
        assert value(now, "chatctl_users") == 1
        assert value(now, "chatctl_connections") >= 1
        assert value(now, "chatctl_rooms") == 2
        assert value(now, "chatctl_room_members", room="#ops") == 1
        assert value(now, "chatctl_room_members", room="#lobby") == 0
        assert value(now, "chatctl_messages_relayed_total") == 1
        assert value(now, "chatctl_deliveries_total", room="#ops") >= 2  # her join, her message
        assert value(now, "chatctl_queued_bytes") >= 0
        assert value(now, "chatctl_history_messages") == 1
        assert value(now, "chatctl_history_failed") == 0
        assert value(now, "chatctl_history_write_seconds_count") >= 1
        assert value(now, "chatctl_history_write_seconds_bucket", le="+Inf") == value(
            now, "chatctl_history_write_seconds_count"
        )
        assert value(now, "chatctl_history_write_seconds_sum") > 0

        alice.close_stdin()
        assert alice.wait() == 0
        wait_until(
            lambda: value(scrape(url), "chatctl_leaves_total", reason="quit") == 1,
            10,
            "alice's quit counted",
        )
        after = scrape(url)
        assert value(after, "chatctl_users") == 0
        assert value(after, "chatctl_rooms") == 1  # #ops is gone with her; its series too
        assert value(after, "chatctl_messages_received_total", room="#ops") == -1
        assert value(after, "chatctl_messages_relayed_total") == 1
    assert "Traceback" not in server.log.text()


def _busy_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_metrics_on_a_port_in_use_exits_9_with_one_line() -> None:
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        result = run_chatctl("serve", "--port", "0", "--no-history", "--metrics", str(port))
    assert result.returncode == ExitCode.CANNOT_START, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"chatctl: cannot listen on 127.0.0.1:{port} for --metrics: address already in use"
    ]
    assert "listening on" not in result.stdout  # it never listened for chat either


def test_metrics_port_in_use_in_the_json_log_too() -> None:
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        result = run_chatctl(
            "serve", "--port", "0", "--no-history", "--log-format", "json", "--metrics", str(port)
        )
    assert result.returncode == ExitCode.CANNOT_START, result.stdout + result.stderr
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"]) == ("cannot_start", "error")
    assert (
        record["message"]
        == f"cannot listen on 127.0.0.1:{port} for --metrics: address already in use"
    )


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["--metrics", "notaport"], {}),
        (["--metrics", "127.0.0.1:70000"], {}),
        ([], {"CHATCTL_METRICS": "x"}),
        (["--log-format", "xml"], {}),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], extra: dict[str, str]) -> None:
    result = run_chatctl("serve", "--port", "0", *args, timeout=10, COLUMNS="100", **extra)
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.splitlines()[-1]
    flag = "--log-format" if "--log-format" in args else "--metrics"
    assert error.startswith(f"Error: Invalid value for {flag}") or error.startswith(
        f"Error: Invalid value for '{flag}'"
    ), error


def test_without_metrics_prometheus_client_is_never_imported() -> None:
    for command in (["--help"], ["serve", "--help"]):
        result = subprocess.run(
            [*chatctl_command(), *command],
            env=env(PYTHONPROFILEIMPORTTIME="1"),
            capture_output=True,
            text=True,
            timeout=30 * FACTOR,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "prometheus_client" not in result.stderr, command


@needs_redis
def test_backplane_metrics_appear_with_a_backplane(redis: RedisProcess, tmp_path: Path) -> None:
    """A real Redis: the lag is there from the start, the reconnects count a restart."""
    with serve_process("--metrics", "0", "--no-history", "--backplane", redis.url) as server:
        url = metrics_url(server)
        first = scrape(url)
        assert value(first, "chatctl_backplane_lag_seconds") >= 0
        assert value(first, "chatctl_backplane_reconnects_total") == 0
        for name, _ in first:
            if name.startswith("chatctl_backplane"):
                assert_documented(name.removesuffix("_total"))
        redis.restart()
        wait_until(
            lambda: value(scrape(url), "chatctl_backplane_reconnects_total") == 1,
            15 * FACTOR,
            "the reconnection counted",
        )


def test_every_server_event_has_a_documented_name() -> None:
    for kind in get_args(ServerEvent):
        assert_documented(event_name(kind))
    assert event_name(UserLeft) == "user_left"


def _serve_then_lose_the_log(*args: str) -> subprocess.Popen[bytes]:
    """A server whose log is read until it listens, then no longer: the pipe's reader is
    gone, as when a worker's supervisor is killed or ``| tee`` dies."""
    proc = subprocess.Popen(
        [*chatctl_command(), "serve", "--host", "127.0.0.1", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env(),
    )
    assert proc.stdout is not None
    for raw in proc.stdout:
        if b"listening" in raw:
            break
    port = re.search(rb"127\.0\.0\.1:(\d+)", raw)
    assert port is not None, raw
    proc.stdout.close()
    proc.port = int(port.group(1))  # type: ignore[attr-defined]
    return proc


async def _chat_then_stop(proc: subprocess.Popen[bytes]) -> None:
    """Joins, a message and leaves are all logged into the closed pipe: the chat goes on,
    and SIGTERM still ends the server, at once and with exit 0."""
    port: int = proc.port  # type: ignore[attr-defined]
    try:
        alice = await Wire.hello(port, "alice")
        await alice.until("room", room="#lobby")
        bob = await Wire.hello(port, "bob")
        await bob.until("room", room="#lobby")
        await alice.send(type="say", room="#lobby", text="still here", id="m1")
        assert (await bob.until("message", text="still here"))["name"] == "alice"
        await alice.close()
        assert (await bob.until("leave", name="alice"))["reason"] == "dropped"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10 * FACTOR) == ExitCode.OK
        await bob.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_server_whose_log_reader_is_gone_goes_on() -> None:
    await _chat_then_stop(_serve_then_lose_the_log("--no-history"))


@needs_redis
async def test_a_json_logging_cluster_server_whose_log_reader_is_gone_goes_on(
    redis: RedisProcess, tmp_path: Path
) -> None:
    """The case of a worker whose supervisor was killed -9: its backplane link must
    stop too, or the process would never end."""
    args = ("--log-format", "json", "--backplane", redis.url, "--history", str(tmp_path / "h.db"))
    await _chat_then_stop(_serve_then_lose_the_log(*args))
