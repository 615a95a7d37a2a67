"""compare.py's cluster figures (issue 11): chatctl servers sharing a Redis backplane beside
the single server, in the same run.

The servers: ``cluster-2`` is ``bench --cluster 2`` (two ``serve --backplane`` processes on
one redis-server bench starts, AOF off, the clients round-robin over them) and
``cluster-1`` is ``bench --cluster 1 --backplane`` (one server on the backplane: what the
backplane costs without the split). Server CPU is the servers' summed; Redis's CPU is
reported beside it, and the deliveries per CPU-second of servers and Redis together.
In ``rate`` the latency of the samples whose sender was on the other server than the
receiver is the cross-server latency the issue names.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from compare_format import fmt, ratio, verdict

CLUSTER_LABELS = {
    "cluster-1": "chatctl, 1 server on a backplane",
    "cluster-2": "chatctl, 2 servers on a backplane",
}
CLUSTER_SPAWNED = {"cluster-1": ["--cluster", "1", "--backplane"], "cluster-2": ["--cluster", "2"]}
CLUSTER_SERVERS = ("cluster-1", "cluster-2")


def _by(results: dict[tuple[str, str], dict[str, Any]], server: str) -> dict[str, Any]:
    return {k[0]: v for k, v in results.items() if k[1] == server and "failed" not in v}


def cluster_ratios(
    results: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace
) -> list[str]:
    """Each cluster server against the single one, scenario by scenario, from the medians."""
    c = _by(results, "chatctl")
    rows = [
        (scenario, server)
        for scenario in args.scenarios
        for server in CLUSTER_SERVERS
        if scenario in _by(results, server)
    ]
    if not rows:
        return []
    lines = [
        "",
        "### Cluster (issue 11), from the medians",
        "",
        "| scenario | server | per server CPU-s | ÷ chatctl | server CPU, each | Redis CPU "
        "| per CPU-s with Redis | ÷ chatctl | p50 ms | p99 ms | cross-server p50 / p99 ms "
        "| cross p99 ÷ chatctl p99 | lost |",
        "| --- | --- |" + " ---: |" * 11,
    ]
    for scenario, server in rows:
        s, cs = _by(results, server)[scenario], c.get(scenario, {})
        each = " / ".join(fmt(x, "%") for x in s["each_cpu"]) if s["each_cpu"] else "-"
        redis = f"{fmt(s['redis_cpu'], '%')} ({fmt(s['redis_cpu_s'], 'ms')} s)"
        cross = f"{fmt(s['cross_p50'], 'ms')} / {fmt(s['cross_p99'], 'ms')}"
        if s["cross_p99"] is None:
            cross = "-"
        lines.append(
            f"| {scenario} | {CLUSTER_LABELS[server]} | {fmt(s['dpcpu'])} "
            f"| {fmt(ratio(s['dpcpu'], cs.get('dpcpu')), 'x')} | {each} | {redis} "
            f"| {fmt(s['dpcpu_redis'])} | {fmt(ratio(s['dpcpu_redis'], cs.get('dpcpu')), 'x')} "
            f"| {fmt(s['p50'], 'ms')} | {fmt(s['p99'], 'ms')} | {cross} "
            f"| {fmt(ratio(s['cross_p99'], cs.get('p99')), 'x')} | {s['lost']} |"
        )
    return lines


def cluster_targets(
    results: dict[tuple[str, str], dict[str, Any]],
) -> Iterator[tuple[str, str, str]]:
    c, two = _by(results, "chatctl"), _by(results, "cluster-2")
    if "rate" in two:
        cross = two["rate"]["cross_p99"]
        yield (
            "#11 rate, 200 msg/s into 100 clients on 2 servers: cross-server p99 ≤ 3 ms",
            f"{fmt(cross, 'ms')} ms",
            verdict(cross is not None and cross <= 3.0),
        )
        if "rate" in c:
            x = ratio(cross, c["rate"]["p99"])
            yield (
                "#11 rate: cross-server p99 ≤ 2x the single server's `rate` p99",
                f"{fmt(cross, 'ms')} ms vs {fmt(c['rate']['p99'], 'ms')} ms = {fmt(x, 'x')}",
                verdict(x is not None and x <= 2.0),
            )
    if "fanout-100" in two and "fanout-100" in c:
        a, b = two["fanout-100"], c["fanout-100"]
        x = ratio(a["dpcpu"], b["dpcpu"])
        yield (
            "#11 fan-out N=100 over 2 servers: per server CPU-s (both) ≥ 0.6x one server's",
            f"{fmt(a['dpcpu'])} vs {fmt(b['dpcpu'])} = {fmt(x, 'x')} (Redis "
            f"{fmt(a['redis_cpu'], '%')} of a CPU beside; with it {fmt(a['dpcpu_redis'])})",
            verdict(x is not None and x >= 0.6),
        )
    ours = [v for s in CLUSTER_SERVERS for v in _by(results, s).values()]
    if ours:
        clean = all(v["lost"] == 0 and v["disconnected"] == 0 for v in ours)
        yield ("#11 gate: zero loss, no client cut off, on the backplane", "", verdict(clean))
