"""``chatctl bench`` end to end, tiny: it is a tool, so the suite checks that it runs and
counts right, not how fast anything is (benchmarks/compare.py does that, outside the suite)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from chatctl.bench.config import SCENARIOS
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
