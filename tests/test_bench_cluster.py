"""``chatctl bench --cluster``: two servers on a Redis backplane that bench starts itself,
tiny and short. It checks that a run counts right (every delivery, the servers' CPU summed,
Redis's beside it, latency split by where the sender was), not how fast anything is
(benchmarks/compare.py --cluster does that, outside the suite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.redisproc import needs_redis
from tests.support import run_chatctl

pytestmark = pytest.mark.timeout(60)


@needs_redis
def test_rate_over_two_servers_loses_nothing_and_splits_latency_by_server() -> None:
    result = run_chatctl(
        "bench", "rate", "--clients", "6", "--rate", "100", "--seconds", "1", "--cluster", "2",
        "--json", timeout=40,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["cluster"] == 2
    assert figures["backplane"].startswith("redis://127.0.0.1:")
    assert figures["redis_aof"] is False
    servers = figures["servers"]
    assert len(servers) == 2
    assert len({s["port"] for s in servers}) == 2
    assert figures["port"] == servers[0]["port"]
    assert [s["clients"] for s in servers] == [3, 3]  # round-robin
    for server in servers:
        assert server["alive"] is True
        command = server["command"]
        assert command[command.index("--backplane") + 1] == figures["backplane"]
        assert server["cpu_seconds"] > 0
    total = sum(s["cpu_seconds"] for s in servers)
    assert figures["server"]["cpu_seconds"] == pytest.approx(total)
    assert figures["deliveries_per_server_cpu_second"] == pytest.approx(
        figures["deliveries"] / total
    )
    assert figures["redis_cpu_seconds"] is not None
    assert 0 <= figures["redis_cpu_seconds"] < 10
    assert figures["redis_info_cpu_seconds"] is not None
    assert (
        figures["deliveries_per_cpu_second_with_redis"]
        <= (figures["deliveries_per_server_cpu_second"])
    )
    # every message reached all 6 clients on both servers, its sender included
    assert figures["clients_joined"] == 6
    assert figures["messages_sent"] > 50
    assert figures["deliveries_expected"] == figures["messages_sent"] * 6
    assert figures["deliveries"] == figures["deliveries_expected"]
    assert figures["lost"] == 0
    assert figures["errors"] == {}
    assert figures["disconnected"] == {}
    # half the pairs are across servers: both kinds of latency are sampled, and they make
    # up all the samples
    cross, same = figures["latency_cross_server"], figures["latency_same_server"]
    assert cross["samples"] > 0
    assert same["samples"] > 0
    assert cross["samples"] + same["samples"] == figures["latency"]["samples"]
    assert 0 < cross["p50_ms"] <= cross["p99_ms"] <= cross["max_ms"] < 5000
    assert any("a cluster run: 2 servers" in note for note in figures["notes"])


def test_a_cluster_without_redis_server_says_so_in_one_line(tmp_path: Path) -> None:
    # no redis-server on PATH (an empty folder): bench says what is missing, starts nothing
    result = run_chatctl("bench", "rate", "--cluster", "2", PATH=str(tmp_path), COLUMNS="200")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs redis-server" in lines[0]


def test_a_cluster_is_of_servers_bench_starts() -> None:
    result = run_chatctl("bench", "--cluster", "2", "--port", "5000", COLUMNS="200")
    assert result.returncode == 2
    assert "--cluster and --backplane are for the servers bench starts" in result.stderr
