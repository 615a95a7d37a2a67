"""chatctl beside ``ncat --chat``, a minimal asyncio line relay and, with ``--baseline REF``,
an older chatctl built from a git commit, with ``--history`` chatctl keeping history, and
with ``--irc`` chatctl's IRC door (every client, then half of them, on IRC) and ngIRCd, on
the same scenarios, in turns.

    .venv/bin/python benchmarks/compare.py --baseline 55c7117   # 3 rounds, ~25 minutes
    .venv/bin/python benchmarks/compare.py --repeat 1 --seconds 2 --idle-clients 3000  # a look
    .venv/bin/python benchmarks/compare.py --scenarios fanout-100,rate --history  # its cost
    .venv/bin/python benchmarks/compare.py --servers chatctl --irc --scenarios fanout-100,rate

Every figure comes from ``chatctl bench --json`` of this tree: chatctl runs in a server
that bench starts (pacing off, limits raised, ``--no-history``); the server ``history``
("chatctl+history" in the tables) is the same with ``bench --history``, a history file in
a temporary folder removed after each run. ncat, the relay and the baseline in servers
started here afresh for each run (``bench --port P --server-pid PID``; ``--raw`` for the
line relays; the baseline is started as bench starts chatctl, and spoken to in version 1
if that is all it knows). Rounds go scenario by scenario and server by server, so slow
drift on the machine hits every server alike; the tables give the median of the rounds and
the ratios of those medians. Before each run the script waits (``--quiet-wait`` seconds at
most) until other programs use less than a quarter of a CPU, and each row reports what
the others used during the run anyway. The rooms scenarios run on chatctl alone: a line
relay has no rooms, and a version-1 server one room.

Output: Markdown tables on stdout (machine, results, ratios, targets of issues 5 and 9,
and what history may cost: ``rate`` p99 ≤ 1.2x and fan-out N=100 deliveries per server
CPU-s ≥ 0.8x chatctl's without it, in the same run),
progress on stderr, every run's JSON with ``--save FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, so this folder is first on sys.path.
from compare_cluster import CLUSTER_SERVERS, CLUSTER_SPAWNED
from compare_irc import IRC_SERVERS, IRC_SPAWNED
from compare_report import IDLE, report, summarise
from compare_servers import NGIRCD, Baseline, started

#: In each round's order: chatctl keeping history runs right after chatctl without, and
#: the IRC door (all, then half the clients on IRC) next, ngIRCd last.
SERVERS = ("chatctl", "history", "cluster-1", "cluster-2", "irc", "irc-half", "baseline",
           "ncat", "relay", "ngircd", "ngircd-penalties")  # fmt: skip
#: The servers that ``chatctl bench`` starts itself (``history``: with ``bench --history``;
#: ``irc``, ``irc-half``: with its IRC door, ``bench --irc`` or ``--irc-share 0.5``;
#: ``cluster-1``, ``cluster-2``: on a Redis backplane, ``bench --cluster N``).
SPAWNED = {"chatctl": [], "history": ["--history"], **IRC_SPAWNED, **CLUSTER_SPAWNED}
ROOMS = ["rooms", "--rooms", "50", "--members", "10"]
#: scenario name -> chatctl bench arguments (--seconds is added from the command line)
SCENARIOS: dict[str, list[str]] = {
    "fanout-100": ["fanout", "--clients", "100"],
    "fanout-500": ["fanout", "--clients", "500"],
    "rate": ["rate", "--clients", "100", "--rate", "200"],
    "stuck": ["stuck", "--clients", "100"],
    #: 50 rooms of 10, one sender in each: flooding, then 200 messages/s over all rooms.
    "rooms-50x10": ROOMS,
    "rooms-50x10-rate": [*ROOMS, "--rate", "200"],
    #: the same 50 rooms of 10, every client in 3 of them (167 clients, the last in 2).
    "rooms-3each": [*ROOMS, "--rooms-per-client", "3"],
    "idle": ["idle", "--procs", "2"],
    #: chatctl only: idle clients that join the room, so each join is announced to all.
    "idle-join": ["idle", "--procs", "2", "--join"],
}
#: Clients a scenario connects (for the servers' limits and the timeout).
CLIENTS = {"fanout-100": 100, "fanout-500": 500, "rate": 100, "stuck": 101}
#: Scenarios that flood with a window (``--window`` applies).
WINDOWED = ("fanout-100", "fanout-500", "stuck", "rooms-50x10", "rooms-3each")
ROOM_SCENARIOS = ("rooms-50x10", "rooms-50x10-rate", "rooms-3each")
#: ncat --chat tells everyone about every new connection, with the whole user list: a
#: trial connected 155 of 2000 idle clients in 10 s, so idle measures that, not memory.
#: Line relays have no rooms; a baseline of version 1 is skipped once bench says so.
SKIP = {
    ("idle", "ncat"),
    ("idle-join", "ncat"),
    ("idle-join", "relay"),
    *((scenario, server) for scenario in ROOM_SCENARIOS for server in ("ncat", "relay")),
}


def chatctl() -> list[str]:
    beside = Path(sys.executable).parent / "chatctl"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "chatctl"]


def machine_busy() -> float:
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(budget: float) -> None:
    """Wait until other programs use less than a quarter of a CPU, for at most ``budget`` s."""
    end = time.monotonic() + budget
    while True:
        before = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - before) / 0.5 < 0.25 or time.monotonic() > end:
            return
        print("  waiting for other programs to go quiet...", file=sys.stderr)
        time.sleep(2)


def run_one(
    server: str, scenario: str, args: argparse.Namespace, baseline: Baseline | None
) -> dict[str, Any]:
    bench = [*chatctl(), "bench", *SCENARIOS[scenario], "--json"]
    if args.window and scenario in WINDOWED:
        bench += ["--window", str(args.window)]
    if scenario in IDLE:
        bench += ["--clients", str(args.idle_clients), "--seconds", str(args.idle_seconds)]
        clients = args.idle_clients
    else:
        bench += ["--seconds", str(args.seconds)]
        clients = CLIENTS.get(scenario, 500)
    timeout = 180 + clients / 100
    if server in SPAWNED:
        bench += SPAWNED[server]
        out = subprocess.run(bench, capture_output=True, text=True, timeout=timeout, check=False)
    else:
        with started(server, clients, baseline) as running:
            bench += ["--host", "127.0.0.1", "--port", str(running.port)]
            bench += ["--server-pid", str(running.pid)] + (["--raw"] if running.raw else [])
            bench += ["--irc"] if running.irc else []
            out = subprocess.run(
                bench, capture_output=True, text=True, timeout=timeout, check=False
            )
    if out.returncode != 0:
        return {"failed": out.stderr.strip() or f"exit code {out.returncode}"}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-clients", type=int, default=15000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--servers",
        help=f"of {','.join(SERVERS)} [all; baseline with REF, history with --history]",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--window", type=int, help="window of the flooding scenarios [bench's]")
    parser.add_argument(
        "--baseline", metavar="REF", help="a git commit of chatctl to build and run beside"
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="also chatctl keeping history (server `history`, rows chatctl+history)",
    )
    parser.add_argument(
        "--irc",
        action="store_true",
        help="also chatctl's IRC door (servers irc, irc-half) and ngIRCd (ngircd; "
        "ngircd-penalties, its flood penalties on, only when named in --servers)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also chatctl on a Redis backplane bench starts: cluster-1 (one server on it) "
        "and cluster-2 (two servers, the clients spread over them); needs redis-server",
    )
    parser.add_argument("--save", type=Path, help="write every run's JSON here")
    args = parser.parse_args()
    optional = {"baseline": bool(args.baseline), "history": args.history}
    optional |= {s: args.irc and s != "ngircd-penalties" for s in IRC_SERVERS}
    optional |= {s: args.cluster for s in CLUSTER_SERVERS}
    default = [s for s in SERVERS if optional.get(s, True)]
    args.servers = [s for s in (args.servers or ",".join(default)).split(",") if s]
    if args.history and "history" not in args.servers:  # --servers ... --history
        after = args.servers.index("chatctl") + 1 if "chatctl" in args.servers else 0
        args.servers.insert(after, "history")  # next to the chatctl it is compared with
    if args.irc:  # --servers ... --irc: the IRC servers after the others, in SERVERS' order
        args.servers += [s for s in IRC_SERVERS if optional[s] and s not in args.servers]
    if args.cluster:
        args.servers += [s for s in CLUSTER_SERVERS if s not in args.servers]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS) or set(args.servers) - set(SERVERS)
    if unknown:
        sys.exit(f"unknown: {', '.join(sorted(unknown))}")
    if "ncat" in args.servers and not shutil.which("ncat"):
        sys.exit("ncat is not installed (Debian: apt-get install ncat)")
    if any(s.startswith("ngircd") for s in args.servers) and not Path(NGIRCD).exists():
        sys.exit(f"ngIRCd is not installed at {NGIRCD} (Debian: apt-get install ngircd)")
    if any(s in CLUSTER_SERVERS for s in args.servers) and not shutil.which("redis-server"):
        sys.exit("redis-server is not installed (Debian: apt-get install redis-server)")
    if "baseline" in args.servers and not args.baseline:
        sys.exit("the baseline server needs --baseline REF")
    baseline = Baseline(args.baseline) if "baseline" in args.servers else None
    args.baseline_label = (
        f"`{args.baseline}` ({baseline.sha[:7]}, {baseline.version})" if baseline else None
    )
    try:
        runs = run_all(args, baseline)
    finally:
        if baseline is not None:
            baseline.close()
    if args.save:
        args.save.write_text(
            json.dumps({f"{k[0]} {k[1]}": v for k, v in runs.items()}, indent=1) + "\n"
        )
    results = {key: summarise(value) for key, value in runs.items()}
    sys.stdout.write(report(results, args, chatctl(), SKIP))
    failed = sum("failed" in run for value in runs.values() for run in value)
    if failed:  # the tables above hold the rest; a script must not take this for a clean run
        print(f"{failed} run(s) failed: see 'failed:' above", file=sys.stderr)
        sys.exit(1)


def run_all(
    args: argparse.Namespace, baseline: Baseline | None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(1, args.repeat + 1):
        for scenario in args.scenarios:
            for server in args.servers:
                if (scenario, server) in SKIP:
                    continue
                wait_quiet(args.quiet_wait)
                print(f"round {round_}: {scenario} on {server}", file=sys.stderr, flush=True)
                result = run_one(server, scenario, args, baseline)
                if "needs version 2" in result.get("failed", ""):
                    print("  skipped: the baseline speaks version 1 (one room)", file=sys.stderr)
                    SKIP.add((scenario, server))
                    continue
                runs.setdefault((scenario, server), []).append(result)
                if "failed" in result:
                    print(f"  failed: {result['failed']}", file=sys.stderr)
                elif scenario not in IDLE:
                    print(
                        f"  {result['deliveries_per_second'] / 1e6:.2f} M/s, "
                        f"{(result['deliveries_per_server_cpu_second'] or 0) / 1e6:.2f} M "
                        f"per CPU-s, p99 {result['latency']['p99_ms']:.2f} ms, "
                        f"lost {result['lost']}",
                        file=sys.stderr,
                    )
    return runs


if __name__ == "__main__":
    main()
