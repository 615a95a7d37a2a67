"""``chatctl bench`` end to end, tiny: it is a tool, so the suite checks that it runs and
counts right, not how fast anything is (benchmarks/compare.py does that, outside the suite)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatctl.bench.config import SCENARIOS
from chatctl.bench.layout import Layout
from tests.support import ROOT, LineReader, run_chatctl


def test_fanout_runs_end_to_end_with_zero_loss() -> None:
    result = run_chatctl(
        "bench", "fanout", "--clients", "5", "--seconds", "1", "--json", CHATCTL_LOOP="asyncio"
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["server"]["spawned"] is True
    assert figures["clients_joined"] == 5
    assert figures["messages_sent"] > 0
    # chatctl sends every message back to its sender too: 5 receivers each
    assert figures["deliveries_expected"] == figures["messages_sent"] * 5
    assert figures["deliveries"] == figures["deliveries_expected"]
    assert figures["lost"] == 0
    assert figures["errors"] == {}
    assert figures["latency"]["samples"] > 0
    assert figures["server"]["cpu_seconds"] is not None
    assert figures["server"]["alive"] is True
    assert figures["server"]["event_loop"] == "asyncio"  # the loop asked for reaches the server


def test_the_server_bench_starts_keeps_no_history(tmp_path: Path) -> None:
    # bench's server never sees CHATCTL_DATA_DIR (no CHATCTL_* reaches it): without
    # --no-history it would write into $XDG_DATA_HOME/chatctl
    xdg = tmp_path / "xdg"
    figures = _bench_json("fanout", "--clients", "3", "--seconds", "0.5", XDG_DATA_HOME=str(xdg))
    _no_loss(figures)
    assert "--no-history" in figures["server"]["command"]
    assert figures["server"]["history"] is False
    assert "history" not in figures["server"]["status"]  # the server says it keeps none
    assert not xdg.exists()


def test_history_keeps_every_message_in_a_temporary_file_removed_afterwards(
    tmp_path: Path,
) -> None:
    xdg = tmp_path / "xdg"
    figures = _bench_json(
        "fanout", "--clients", "3", "--seconds", "0.5", "--history", XDG_DATA_HOME=str(xdg)
    )
    _no_loss(figures)
    command = figures["server"]["command"]
    assert "--no-history" not in command
    path = Path(command[command.index("--history") + 1])
    assert figures["server"]["history"] is True
    # every message accepted was in the file by the time the drain ended
    assert figures["server"]["status"]["history"]["messages"] == figures["messages_sent"]
    assert not path.parent.exists()  # the file, its -wal, -shm and lock, and the log
    assert not xdg.exists()


def test_history_is_for_the_server_bench_starts() -> None:
    result = run_chatctl("bench", "--history", "--port", "5000", COLUMNS="200")
    assert result.returncode == 2
    assert "--history is for the server bench starts" in result.stderr


@pytest.fixture
def relay() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "relay.py"), "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    log = LineReader(proc.stdout)
    try:
        yield int(log.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    finally:
        proc.terminate()
        proc.wait(10)
        log.join()
        proc.stdout.close()


def test_raw_mode_drives_a_line_relay(relay: int) -> None:
    result = run_chatctl(
        "bench", "fanout", "--clients", "4", "--seconds", "0.5", "--raw", "--port", str(relay),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["server"]["spawned"] is False
    # a line relay does not send a line back to its sender: 3 receivers each
    assert figures["deliveries_expected"] == figures["messages_sent"] * 3 > 0
    assert figures["lost"] == 0


def test_a_bad_scenario_is_a_usage_error() -> None:
    result = run_chatctl("bench", "shout", COLUMNS="200")
    assert result.returncode == 2
    assert re.search(
        r"'shout' is not one of 'fanout', 'rate', 'idle', 'stuck', 'rooms'", result.stderr
    )


def test_help_lists_exactly_the_scenarios_bench_runs() -> None:
    result = run_chatctl("bench", "--help", COLUMNS="200")
    assert result.returncode == 0, result.stderr
    assert re.search(rf"\s{re.escape('|'.join(SCENARIOS))}\s", result.stdout), result.stdout


def test_the_generator_core_has_no_terminal_code() -> None:
    code = "import sys, chatctl.bench; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert not {m.split(".")[0] for m in loaded} & {"rich", "prompt_toolkit", "typer"}


def _bench_json(*args: str, **env: str) -> dict[str, Any]:
    result = run_chatctl("bench", *args, "--json", CHATCTL_LOOP="asyncio", **env)
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _no_loss(figures: dict[str, Any]) -> None:
    assert figures["messages_sent"] > 0
    assert figures["deliveries"] == figures["deliveries_expected"]
    assert figures["lost"] == 0
    assert figures["errors"] == {}
    assert figures["disconnected"] == {}


def test_rooms_deliver_each_message_to_its_room_only() -> None:
    figures = _bench_json("rooms", "--rooms", "4", "--members", "3", "--seconds", "1")
    assert (figures["rooms"], figures["members"], figures["clients_joined"]) == (4, 3, 12)
    assert figures["protocol"] == 2
    # one sender a room, and each message goes to the 3 members of its room (sender too)
    assert figures["senders"] == 1
    assert figures["deliveries_expected"] == figures["messages_sent"] * 3
    _no_loss(figures)
    assert figures["server"]["status"]["rooms"] is not None


def test_rooms_with_each_client_in_several_rooms() -> None:
    # 5 rooms x 3 members = 15 seats, 2 rooms a client: 8 clients, the last in 1 room only
    figures = _bench_json(
        "rooms", "--rooms", "5", "--members", "3", "--rooms-per-client", "2", "--senders", "2",
        "--seconds", "1",
    )  # fmt: skip
    assert figures["clients_joined"] == figures["clients"] == 8
    assert figures["rooms_per_client"] == 2
    assert figures["deliveries_expected"] == figures["messages_sent"] * 3
    _no_loss(figures)
    rooms = {r["name"]: r["members"] for r in figures["server"]["status"]["rooms"]}
    assert sorted(n for name, n in rooms.items() if name != "#lobby") == [3] * 5


def test_rooms_at_a_fixed_rate() -> None:
    figures = _bench_json(
        "rooms", "--rooms", "3", "--members", "2", "--rate", "40", "--seconds", "1"
    )
    assert figures["rate"] == 40
    assert 30 <= figures["messages_sent"] <= 41
    assert figures["deliveries_expected"] == figures["messages_sent"] * 2
    _no_loss(figures)


@pytest.mark.parametrize(
    ("rooms", "members", "per_client", "senders"),
    [(50, 10, 1, 1), (50, 10, 3, 1), (5, 3, 2, 2), (7, 4, 7, 4), (1, 2, 1, 1)],
)
def test_the_room_layout_fills_every_room_exactly(
    rooms: int, members: int, per_client: int, senders: int
) -> None:
    layout = Layout(rooms, members, per_client, senders, named=True, tag="t")
    seats: Counter[int] = Counter()
    sending: Counter[int] = Counter()
    for client in range(layout.clients):
        mine = layout.rooms_of(client)
        assert 1 <= len(mine) <= per_client
        assert len(set(mine)) == len(mine)
        seats.update(mine)
        assert set(layout.sends_to(client)) <= set(mine)
        sending.update(layout.sends_to(client))
    assert seats == dict.fromkeys(range(rooms), members)
    assert sending == dict.fromkeys(range(rooms), senders)


class _V1Server(socketserver.ThreadingTCPServer):
    """A server of protocol version 1 in a few lines: one room, ``unsupported_version``
    for any other hello, a ``message`` with ``seq`` for each ``say``, to everyone."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _V1Handler)
        self.lock = threading.Lock()
        self.members: dict[str, socket.socket] = {}
        self.hellos: list[int] = []
        self.seq = 0

    def send_all(self, frame: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            line = json.dumps({**frame, "seq": self.seq, "time": time.time()}).encode() + b"\n"
            for sock in list(self.members.values()):
                with contextlib.suppress(OSError):
                    sock.sendall(line)


class _V1Handler(socketserver.StreamRequestHandler):
    server: _V1Server

    def handle(self) -> None:
        name = None
        try:
            for raw in self.rfile:
                frame = json.loads(raw)
                reply: dict[str, Any] | None = None
                if frame["type"] == "hello":
                    self.server.hellos.append(frame["version"])
                    if frame["version"] != 1:
                        reply = {"type": "error", "code": "unsupported_version", "message": "1"}
                        self.wfile.write(json.dumps(reply).encode() + b"\n")
                        return
                    name = frame["name"]
                    reply = {"type": "welcome", "version": 1, "name": name, "users": [name],
                             "server": "v1", "seq": self.server.seq}  # fmt: skip
                    self.wfile.write(json.dumps(reply).encode() + b"\n")
                    with self.server.lock:
                        self.server.members[name] = self.request
                elif frame["type"] == "say" and name is not None:
                    assert set(frame) == {"type", "text"}  # no version-2 fields
                    self.server.send_all({"type": "message", "name": name, "text": frame["text"]})
                elif frame["type"] == "status":
                    reply = {"type": "status_reply", "server": {"protocol": 1}, "users": []}
                    self.wfile.write(json.dumps(reply).encode() + b"\n")
                elif frame["type"] == "bye":
                    return
        except (OSError, ValueError):
            pass
        finally:
            with self.server.lock:
                self.server.members.pop(str(name), None)


@pytest.fixture
def v1_server() -> Iterator[_V1Server]:
    server = _V1Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_version_1_server_is_spoken_to_in_version_1(v1_server: _V1Server) -> None:
    port = str(v1_server.server_address[1])
    figures = _bench_json(
        "fanout", "--clients", "3", "--window", "2", "--seconds", "0.5", "--host", "127.0.0.1",
        "--port", port,
    )  # fmt: skip
    assert figures["protocol"] == 1
    assert v1_server.hellos == [2, 1, 1, 1]  # bench's probe, then its three clients
    assert figures["deliveries_expected"] == figures["messages_sent"] * 3
    _no_loss(figures)


def test_rooms_need_a_version_2_server(v1_server: _V1Server) -> None:
    port = str(v1_server.server_address[1])
    result = run_chatctl(
        "bench", "rooms", "--seconds", "0.5", "--host", "127.0.0.1", "--port", port
    )
    assert result.returncode != 0
    assert "speaks protocol version 1" in result.stderr
    assert v1_server.hellos == [2]


@pytest.mark.timeout(120)
def test_the_history_benchmark_runs_small(tmp_path: Path) -> None:
    """benchmarks/history.py builds its file with the server's own INSERT: it broke silently
    once when that statement gained columns."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "history.py"), "--messages", "2000",
         "--rooms", "4", "--joins", "8", "--kills", "1", "--flooders", "2", "--readers", "2",
         "--db", str(tmp_path / "h.sqlite3")],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2,000 messages in 4 rooms" in result.stdout
    # Timings are compare's business; loss and seq are not.
    assert re.search(r"echoed messages missing after restart \| 0 of [1-9]", result.stdout)
    assert re.search(r"seq reused after restart \(of [1-9]\d* checked\) \| 0 \|", result.stdout)
