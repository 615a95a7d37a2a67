"""chatctl beside ``ncat --chat`` and a minimal asyncio line relay, on the same scenarios, in turns.

    .venv/bin/python benchmarks/compare.py                  # 3 rounds, ~12 minutes
    .venv/bin/python benchmarks/compare.py --repeat 1 --seconds 2 --idle-clients 3000  # a look

Every figure comes from ``chatctl bench --json``: chatctl runs in a server that
bench starts (pacing off, limits raised), ncat and the relay in servers this
script starts afresh for each run (``bench --raw --server-pid``). Rounds go
scenario by scenario and server by server, so slow drift on the machine hits
every server alike; the tables give the median of the rounds and the ratios of
those medians. Before each run the script waits (``--quiet-wait`` seconds at
most) until other programs use less than a quarter of a CPU, and each row
reports what the others used during the run anyway.

Output: Markdown tables on stdout (machine, results, ratios, targets from
issue 5), progress on stderr, every run's JSON with ``--save FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RELAY = ROOT / "benchmarks" / "relay.py"
SERVERS = ("chatctl", "ncat", "relay")
#: scenario name -> chatctl bench arguments (--seconds is added from the command line)
SCENARIOS: dict[str, list[str]] = {
    "fanout-100": ["fanout", "--clients", "100"],
    "fanout-500": ["fanout", "--clients", "500"],
    "rate": ["rate", "--clients", "100", "--rate", "200"],
    "stuck": ["stuck", "--clients", "100"],
    "idle": ["idle", "--procs", "2"],
    #: chatctl only: idle clients that join the room, so each join is announced to all.
    "idle-join": ["idle", "--procs", "2", "--join"],
}
#: ncat --chat tells everyone about every new connection, with the whole user list: a
#: trial connected 155 of 2000 idle clients in 10 s, so idle measures that, not memory.
SKIP = {("idle", "ncat"), ("idle-join", "ncat"), ("idle-join", "relay")}
IDLE = ("idle", "idle-join")


def chatctl() -> list[str]:
    beside = Path(sys.executable).parent / "chatctl"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "chatctl"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Is something listening on 127.0.0.1:port? Read from /proc: a test connection
    would make ncat announce it, and ncat exits when such a client resets."""
    needle = f"0100007F:{port:04X} 00000000:0000 0A"
    return needle in Path("/proc/net/tcp").read_text()


@contextmanager
def raw_server(kind: str, clients: int) -> Iterator[tuple[int, int]]:
    """Start ncat --chat or the relay on a free loopback port: yields (port, pid)."""
    if kind == "ncat":
        port = free_port()
        cmd = ["ncat", "--chat", "-l", "127.0.0.1", str(port), "--max-conns", str(clients + 64)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while not listening(port):
            if time.monotonic() > end or proc.poll() is not None:
                raise RuntimeError("ncat did not start")
            time.sleep(0.02)
    else:
        proc = subprocess.Popen(
            [sys.executable, str(RELAY), "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if not found:
            proc.kill()
            raise RuntimeError("the relay did not start")
        port = int(found.group(1))
    try:
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def run_one(server: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    bench = [*chatctl(), "bench", *SCENARIOS[scenario], "--json"]
    if args.window and scenario not in IDLE and scenario != "rate":
        bench += ["--window", str(args.window)]
    if scenario in IDLE:
        bench += ["--clients", str(args.idle_clients), "--seconds", str(args.idle_seconds)]
        clients = args.idle_clients
    else:
        bench += ["--seconds", str(args.seconds)]
        clients = int(SCENARIOS[scenario][2])
    timeout = 180 + clients / 100
    if server == "chatctl":
        out = subprocess.run(bench, capture_output=True, text=True, timeout=timeout, check=False)
    else:
        with raw_server(server, clients) as (port, pid):
            bench += ["--raw", "--port", str(port), "--server-pid", str(pid)]
            out = subprocess.run(
                bench, capture_output=True, text=True, timeout=timeout, check=False
            )
    if out.returncode != 0:
        return {"failed": out.stderr.strip() or f"exit code {out.returncode}"}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --------------------------------------------------------------------------- summary


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return {"failed": runs[0].get("failed", "no run")}
    idle = [r["idle"] for r in ok if r.get("idle")]
    stuck = [r["stuck"] for r in ok if r.get("stuck")]
    return {
        "runs": len(ok),
        "dps": median([r["deliveries_per_second"] for r in ok]),
        "dpcpu": median([r["deliveries_per_server_cpu_second"] for r in ok]),
        "p50": median([r["latency"]["p50_ms"] for r in ok]),
        "p99": median([r["latency"]["p99_ms"] for r in ok]),
        "server_cpu": median([r["server"]["cpu_percent"] for r in ok]),
        "gen_cpu": median([r["generator"]["max_proc_cpu_percent"] for r in ok]),
        "others": median([r["machine"]["other_percent"] for r in ok]),
        "lost": max(r["lost"] for r in ok),
        "disconnected": sum(sum(r["disconnected"].values()) for r in ok),
        "alive": all(r["server"]["alive"] is not False for r in ok),
        "connected": median([i["connected"] for i in idle]) if idle else None,
        "confirmed": median([i["confirmed"] for i in idle]) if idle else None,
        "connect_s": median([i["seconds_to_connect"] for i in idle]) if idle else None,
        "rss_client": median([i["server_rss_per_client_bytes"] for i in idle]) if idle else None,
        "status_ms": median([i["status_ms"] for i in idle]) if idle else None,
        "cut_off": f"{sum(s['cut_off'] for s in stuck)}/{len(stuck)}" if stuck else None,
        "failed_runs": len(runs) - len(ok),
    }


def fmt(value: float | None, kind: str = "n") -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "%":
        return f"{value:.0f} %"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "kib":
        return f"{value / 1024:.1f} KiB"
    for limit, suffix in ((1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def machine_facts() -> list[str]:
    from chatctl.eventloop import choose  # as installed; CHATCTL_LOOP reaches both too

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.M)
    ncat = subprocess.run(["ncat", "--version"], capture_output=True, text=True, check=False)
    ncat_version = re.search(r"Version ([\d.]+)", ncat.stdout + ncat.stderr)
    version = subprocess.run([*chatctl(), "--version"], capture_output=True, text=True).stdout
    return [
        f"- {os.cpu_count()} CPUs (`nproc`), {model.group(1) if model else 'unknown CPU'}",
        f"- Linux {platform.release()}, Python {platform.python_version()}, "
        f"{version.strip()}, ncat {ncat_version.group(1) if ncat_version else '?'}",
        f"- chatctl's event loop (server and generator): {choose()[0]}",
        f"- {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]


def report(results: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["### Machine", "", *machine_facts(), ""]
    lines += [
        f"### Results: medians of {args.repeat} (sending {args.seconds:g} s, window "
        f"{args.window or 'default'}; idle {args.idle_clients} clients, {args.idle_seconds:g} s)",
        "",
        "| scenario | server | deliveries/s | per server CPU-s | p50 ms | p99 ms "
        "| server CPU | generator CPU | lost | others' CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in args.scenarios:
        if scenario in IDLE:
            continue
        for server in args.servers:
            s = results.get((scenario, server))
            if s is None:
                continue
            if "failed" in s:
                lines.append(f"| {scenario} | {server} | failed: {s['failed'][:60]} |")
                continue
            extra = f" (cut off {s['cut_off']})" if s["cut_off"] else ""
            lost = f"{s['lost']}" + (f", {s['disconnected']} dropped" if s["disconnected"] else "")
            lines.append(
                f"| {scenario}{extra} | {server} | {fmt(s['dps'])} | {fmt(s['dpcpu'])} "
                f"| {fmt(s['p50'], 'ms')} | {fmt(s['p99'], 'ms')} | {fmt(s['server_cpu'], '%')} "
                f"| {fmt(s['gen_cpu'], '%')} | {lost} | {fmt(s['others'], '%')} |"
            )
    idle_rows = [(sc, sv) for sc in IDLE if sc in args.scenarios for sv in args.servers]
    if idle_rows:
        lines += [
            "",
            "| idle | server | connected | in s | served | server RSS per client | status ms "
            "| alive |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for scenario, server in idle_rows:
            s = results.get((scenario, server))
            if s is None or "failed" in s:
                if (scenario, server) in SKIP and scenario == "idle":
                    lines.append(f"| {scenario} | {server} | not run (see below) | | | | | |")
                elif s is not None:
                    lines.append(f"| {scenario} | {server} | failed: {s['failed'][:60]} |")
                continue
            lines.append(
                f"| {scenario} | {server} | {fmt(s['connected'])} of {args.idle_clients} "
                f"| {fmt(s['connect_s'], 'ms')} | {fmt(s['confirmed'])} "
                f"| {fmt(s['rss_client'], 'kib')} | {fmt(s['status_ms'], 'ms')} "
                f"| {'yes' if s['alive'] else 'no'} |"
            )
    lines += ["", "### Ratios (chatctl ÷ the other, from the medians)", ""]
    lines += [
        "| scenario | deliveries/s ÷ ncat | per CPU-s ÷ ncat | deliveries/s ÷ relay "
        "| per CPU-s ÷ relay | p99 ÷ relay p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    c = {k[0]: v for k, v in results.items() if k[1] == "chatctl" and "failed" not in v}
    n = {k[0]: v for k, v in results.items() if k[1] == "ncat" and "failed" not in v}
    r = {k[0]: v for k, v in results.items() if k[1] == "relay" and "failed" not in v}
    for scenario in args.scenarios:
        if scenario in IDLE or scenario not in c:
            continue
        cs, ns, rs = c[scenario], n.get(scenario, {}), r.get(scenario, {})
        lines.append(
            f"| {scenario} | {fmt(ratio(cs['dps'], ns.get('dps')), 'x')} "
            f"| {fmt(ratio(cs['dpcpu'], ns.get('dpcpu')), 'x')} "
            f"| {fmt(ratio(cs['dps'], rs.get('dps')), 'x')} "
            f"| {fmt(ratio(cs['dpcpu'], rs.get('dpcpu')), 'x')} "
            f"| {fmt(ratio(cs['p99'], rs.get('p99')), 'x')} |"
        )
    lines += ["", "### Targets (issue 5)", "", "| target | measured | met |", "| --- | --- | --- |"]
    for target, measured, met in targets(c, n, r, args):
        lines.append(f"| {target} | {measured} | {met} |")
    return "\n".join(lines) + "\n"


def targets(
    c: dict[str, Any], n: dict[str, Any], r: dict[str, Any], args: argparse.Namespace
) -> Iterator[tuple[str, str, str]]:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("**yes**" if ok else "**no**")

    for size in ("100", "500"):
        key = f"fanout-{size}"
        if key in c and key in n:
            dps = ratio(c[key]["dps"], n[key]["dps"])
            cpu = ratio(c[key]["dpcpu"], n[key]["dpcpu"])
            yield (
                f"fan-out N={size}: deliveries/s ≥ 0.8x ncat",
                fmt(dps, "x"),
                verdict(dps is not None and dps >= 0.8),
            )
            yield (
                f"fan-out N={size}: deliveries per server CPU-s ≥ 0.4x ncat",
                fmt(cpu, "x"),
                verdict(cpu is not None and cpu >= 0.4),
            )
    if "rate" in c and "rate" in r:
        p99 = ratio(c["rate"]["p99"], r["rate"]["p99"])
        yield (
            "rate: p99 ≤ 2x the relay's p99",
            f"{fmt(c['rate']['p99'], 'ms')} ms vs {fmt(r['rate']['p99'], 'ms')} ms = "
            f"{fmt(p99, 'x')}",
            verdict(p99 is not None and p99 <= 2),
        )
    if "stuck" in c and "fanout-100" in c:
        p99 = ratio(c["stuck"]["p99"], c["fanout-100"]["p99"])
        cut = c["stuck"]["cut_off"]
        yield (
            "stuck: p99 ≤ 1.5x fan-out N=100 without it",
            f"{fmt(c['stuck']['p99'], 'ms')} ms vs {fmt(c['fanout-100']['p99'], 'ms')} ms = "
            f"{fmt(p99, 'x')}",
            verdict(p99 is not None and p99 <= 1.5),
        )
        every = cut is not None and cut.split("/")[0] == cut.split("/")[1]
        yield ("stuck: the stuck client cut off", f"{cut} runs", verdict(every))
    if "idle" in c:
        i = c["idle"]
        full = args.idle_clients >= 15000 and args.idle_seconds <= 10
        ok = i["connected"] is not None and i["connected"] >= 15000 and i["alive"]
        yield (
            "idle: 15 000 connected within 10 s, server alive",
            f"{fmt(i['connected'])} of {args.idle_clients} in {fmt(i['connect_s'], 'ms')} s",
            verdict(ok if full else None),
        )
        rss = i["rss_client"]
        yield (
            "idle: ≤ 10 KiB server RSS per client",
            fmt(rss, "kib"),
            verdict(rss is not None and rss <= 10 * 1024),
        )
        yield (
            "`chatctl status` within 50 ms with 15 000 connected (not joined)",
            f"{fmt(i['status_ms'], 'ms')} ms",
            verdict(i["status_ms"] is not None and i["status_ms"] <= 50 if full else None),
        )
    if "idle-join" in c:
        j = c["idle-join"]
        ok = j["connected"] is not None and j["connected"] >= 15000 and j["alive"]
        yield (
            "idle, joined: 15 000 in the room within 10 s",
            f"{fmt(j['connected'])} of {args.idle_clients} in {fmt(j['connect_s'], 'ms')} s",
            verdict(ok if args.idle_clients >= 15000 and args.idle_seconds <= 10 else None),
        )
        yield (
            "`chatctl status` within 50 ms, users listed",
            f"{fmt(j['status_ms'], 'ms')} ms with {fmt(j['connected'])} users",
            verdict(j["status_ms"] is not None and j["status_ms"] <= 50),
        )
    clean = all(v["lost"] == 0 and v["disconnected"] == 0 for v in c.values())
    yield ("gate: zero loss, no client cut off (chatctl, every scenario)", "", verdict(clean))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle-clients", type=int, default=15000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--window", type=int, help="fanout/stuck window [bench's default]")
    parser.add_argument("--save", type=Path, help="write every run's JSON here")
    args = parser.parse_args()
    args.servers = [s for s in args.servers.split(",") if s]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if "ncat" in args.servers and not shutil.which("ncat"):
        sys.exit("ncat is not installed (Debian: apt-get install ncat)")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(1, args.repeat + 1):
        for scenario in args.scenarios:
            for server in args.servers:
                if (scenario, server) in SKIP:
                    continue
                wait_quiet(args.quiet_wait)
                print(f"round {round_}: {scenario} on {server}", file=sys.stderr, flush=True)
                result = run_one(server, scenario, args)
                runs.setdefault((scenario, server), []).append(result)
                if "failed" in result:
                    print(f"  failed: {result['failed']}", file=sys.stderr)
                elif scenario not in IDLE:
                    print(
                        f"  {result['deliveries_per_second'] / 1e6:.2f} M/s, "
                        f"p99 {result['latency']['p99_ms']:.2f} ms, lost {result['lost']}",
                        file=sys.stderr,
                    )
    if args.save:
        args.save.write_text(
            json.dumps({f"{k[0]} {k[1]}": v for k, v in runs.items()}, indent=1) + "\n"
        )
    results = {key: summarise(value) for key, value in runs.items()}
    sys.stdout.write(report(results, args))


if __name__ == "__main__":
    main()
