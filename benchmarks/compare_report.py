"""compare.py's Markdown: the machine, the medians of the rounds, the ratios of those
medians, and the targets (issue 5's, issue 9's for the baseline, ``rate`` and rooms, and
what history may cost: chatctl+history against chatctl in the same run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from compare_cluster import CLUSTER_LABELS, CLUSTER_SERVERS, cluster_ratios, cluster_targets
from compare_format import fmt, median, ratio, verdict
from compare_irc import IRC_LABELS, irc_ratios, irc_targets
from compare_machine import machine_facts
from compare_servers import NGIRCD

IDLE = ("idle", "idle-join")
#: How a server is named in the tables (compare.py's server ``history``: bench --history).
LABELS = {"history": "chatctl+history", **IRC_LABELS, **CLUSTER_LABELS}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return {"failed": runs[0].get("failed", "no run")}
    idle = [r["idle"] for r in ok if r.get("idle")]
    stuck = [r["stuck"] for r in ok if r.get("stuck")]
    kept = [_kept(r) for r in ok if r["server"].get("history")]
    return {
        "runs": len(ok),
        "dps": median([r["deliveries_per_second"] for r in ok]),
        "dpcpu": median([r["deliveries_per_server_cpu_second"] for r in ok]),
        "p50": median([r["latency"]["p50_ms"] for r in ok]),
        "p99": median([r["latency"]["p99_ms"] for r in ok]),
        "max": median([r["latency"]["max_ms"] for r in ok]),
        "server_cpu": median([r["server"]["cpu_percent"] for r in ok]),
        "gen_cpu": median([r["generator"]["max_proc_cpu_percent"] for r in ok]),
        "others": median([r["machine"]["other_percent"] for r in ok]),
        "lost": max(r["lost"] for r in ok),
        "disconnected": sum(sum(r["disconnected"].values()) for r in ok),
        "alive": all(r["server"]["alive"] is not False for r in ok),
        "protocol": ok[0].get("protocol"),
        "connected": median([i["connected"] for i in idle]) if idle else None,
        "confirmed": median([i["confirmed"] for i in idle]) if idle else None,
        "connect_s": median([i["seconds_to_connect"] for i in idle]) if idle else None,
        "rss_client": median([i["server_rss_per_client_bytes"] for i in idle]) if idle else None,
        "status_ms": median([i["status_ms"] for i in idle]) if idle else None,
        "cut_off": f"{sum(s['cut_off'] for s in stuck)}/{len(stuck)}" if stuck else None,
        "failed_runs": len(runs) - len(ok),
        #: history: runs whose file held every accepted message at the end, of how many
        "kept": f"{sum(kept)}/{len(kept)}" if kept else None,
        **_cluster(ok),
    }


def _cluster(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """A cluster run's figures (bench --cluster/--backplane): Redis's CPU, the servers' CPU
    one by one, the cross-server latency; None for a single server."""

    def split(key: str, figure: str) -> float | None:
        return median([(r.get(key) or {}).get(figure) for r in ok])

    servers = [r.get("servers") or [] for r in ok]
    count = min(len(s) for s in servers)
    return {
        "redis_cpu": median([r.get("redis_cpu_percent") for r in ok]),
        "redis_cpu_s": median([r.get("redis_cpu_seconds") for r in ok]),
        "dpcpu_redis": median([r.get("deliveries_per_cpu_second_with_redis") for r in ok]),
        "cross_p50": split("latency_cross_server", "p50_ms"),
        "cross_p99": split("latency_cross_server", "p99_ms"),
        "local_p99": split("latency_same_server", "p99_ms"),
        "each_cpu": [median([s[i]["cpu_percent"] for s in servers]) for i in range(count)],
    }


def _kept(run: dict[str, Any]) -> bool:
    """Did the server's history hold every message it accepted, with no write failure?"""
    info = (run["server"].get("status") or {}).get("history") or {}
    accepted = run["messages_sent"] - run["messages_refused"]
    return info.get("messages") == accepted and not info.get("error")


def report(
    results: dict[tuple[str, str], dict[str, Any]],
    args: argparse.Namespace,
    chatctl: list[str],
    skip: set[tuple[str, str]],
) -> str:
    history = "history" in args.servers
    ngircd = NGIRCD if any(s.startswith("ngircd") for s in args.servers) else None
    redis = any(s in CLUSTER_SERVERS for s in args.servers)
    facts = machine_facts(chatctl, args.baseline_label, history, ngircd, redis)
    lines = ["### Machine", "", *facts, ""]
    lines += [
        f"### Results: medians of {args.repeat} (sending {args.seconds:g} s, window "
        f"{args.window or 'default'}; idle {args.idle_clients} clients, {args.idle_seconds:g} s)",
        "",
        "| scenario | server | deliveries/s | per server CPU-s | p50 ms | p99 ms | max ms "
        "| server CPU | generator CPU | lost | others' CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in args.scenarios:
        if scenario in IDLE:
            continue
        for server in args.servers:
            s = results.get((scenario, server))
            if s is None:
                continue
            if "failed" in s:
                lines.append(
                    f"| {scenario} | {LABELS.get(server, server)} | failed: {s['failed'][:60]} |"
                )
                continue
            extra = f" (cut off {s['cut_off']})" if s["cut_off"] else ""
            lost = f"{s['lost']}" + (f", {s['disconnected']} dropped" if s["disconnected"] else "")
            label = LABELS.get(server, server) + (" (v1)" if s["protocol"] == 1 else "")
            lines.append(
                f"| {scenario}{extra} | {label} | {fmt(s['dps'])} | {fmt(s['dpcpu'])} "
                f"| {fmt(s['p50'], 'ms')} | {fmt(s['p99'], 'ms')} | {fmt(s['max'], 'ms')} "
                f"| {fmt(s['server_cpu'], '%')} | {fmt(s['gen_cpu'], '%')} | {lost} "
                f"| {fmt(s['others'], '%')} |"
            )
    lines += idle_table(results, args, skip)
    by = {
        server: {k[0]: v for k, v in results.items() if k[1] == server and "failed" not in v}
        for server in ("chatctl", "history", "baseline", "ncat", "relay")
    }
    c, b, n, r = by["chatctl"], by["baseline"], by["ncat"], by["relay"]
    h = by["history"]
    others = b or n or r  # without the baseline, ncat and the relay: no such table
    if others:
        lines += ["", "### Ratios (chatctl ÷ the other, from the medians)", ""]
        lines += [
            "| scenario | per CPU-s ÷ baseline | deliveries/s ÷ baseline | per CPU-s ÷ ncat "
            "| deliveries/s ÷ ncat | per CPU-s ÷ relay | deliveries/s ÷ relay | p99 ÷ relay p99 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    for scenario in args.scenarios:
        if scenario in IDLE or scenario not in c or not others:
            continue
        cs = c[scenario]
        bs, ns, rs = b.get(scenario, {}), n.get(scenario, {}), r.get(scenario, {})
        cells = [
            ratio(cs["dpcpu"], bs.get("dpcpu")),
            ratio(cs["dps"], bs.get("dps")),
            ratio(cs["dpcpu"], ns.get("dpcpu")),
            ratio(cs["dps"], ns.get("dps")),
            ratio(cs["dpcpu"], rs.get("dpcpu")),
            ratio(cs["dps"], rs.get("dps")),
            ratio(cs["p99"], rs.get("p99")),
        ]
        lines.append(f"| {scenario} | " + " | ".join(fmt(x, "x") for x in cells) + " |")
    lines += history_ratios(c, h, args)
    lines += irc_ratios(results, args)
    lines += cluster_ratios(results, args)
    lines += ["", "### Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    rows = [*targets(c, b, n, r, args), *history_targets(c, h), *irc_targets(results)]
    rows += cluster_targets(results)
    for target, measured, met in rows:
        lines.append(f"| {target} | {measured} | {met} |")
    return "\n".join(lines) + "\n"


def history_ratios(c: dict[str, Any], h: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """chatctl+history ÷ chatctl, scenario by scenario, from the medians."""
    rows = [s for s in args.scenarios if s not in IDLE and s in c and s in h]
    if not rows:
        return []
    lines = [
        "",
        "### History's cost (chatctl+history ÷ chatctl, from the medians)",
        "",
        "| scenario | per CPU-s | deliveries/s | p50 | p99 | server CPU | every message kept |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for scenario in rows:
        hs, cs = h[scenario], c[scenario]
        cells = [ratio(hs[key], cs[key]) for key in ("dpcpu", "dps", "p50", "p99", "server_cpu")]
        kept = f"{hs['kept']} runs" if hs["kept"] else "-"
        lines.append(f"| {scenario} | " + " | ".join(fmt(x, "x") for x in cells) + f" | {kept} |")
    return lines


def history_targets(c: dict[str, Any], h: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """What keeping history may cost, against chatctl without it in the same run."""
    row = _against(
        "history: fan-out N=100 per server CPU-s ≥ 0.8x without history",
        h, c, "dpcpu", "fanout-100", 0.8,
    )  # fmt: skip
    if row:
        yield row
    if "rate" in c and "rate" in h:
        p99 = ratio(h["rate"]["p99"], c["rate"]["p99"])
        yield (
            "history: rate p99 ≤ 1.2x without history",
            f"{fmt(h['rate']['p99'], 'ms')} ms vs {fmt(c['rate']['p99'], 'ms')} ms = "
            f"{fmt(p99, 'x')}",
            verdict(p99 is not None and p99 <= 1.2),
        )
    flooded = {k: v for k, v in h.items() if k not in IDLE}
    if flooded:
        every = all(v["kept"] is not None and _all(v["kept"]) for v in flooded.values())
        clean = all(v["lost"] == 0 and v["disconnected"] == 0 for v in flooded.values())
        yield (
            "history: every accepted message in the file, zero loss, no client cut off",
            ", ".join(f"{k} {v['kept']}" for k, v in flooded.items()),
            verdict(every and clean),
        )


def _all(count: str) -> bool:
    """``"3/3"`` -> True."""
    done, total = count.split("/")
    return done == total


def idle_table(
    results: dict[tuple[str, str], dict[str, Any]],
    args: argparse.Namespace,
    skip: set[tuple[str, str]],
) -> list[str]:
    rows = [(sc, sv) for sc in IDLE if sc in args.scenarios for sv in args.servers]
    if not rows:
        return []
    lines = [
        "",
        "| idle | server | connected | in s | served | server RSS per client | status ms | alive |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for scenario, server in rows:
        s = results.get((scenario, server))
        label = LABELS.get(server, server)
        if s is None or "failed" in s:
            if (scenario, server) in skip and scenario == "idle" and server == "ncat":
                lines.append(f"| {scenario} | {server} | not run (see below) | | | | | |")
            elif s is not None:
                lines.append(f"| {scenario} | {label} | failed: {s['failed'][:60]} |")
            continue
        lines.append(
            f"| {scenario} | {label} | {fmt(s['connected'])} of {args.idle_clients} "
            f"| {fmt(s['connect_s'], 'ms')} | {fmt(s['confirmed'])} "
            f"| {fmt(s['rss_client'], 'kib')} | {fmt(s['status_ms'], 'ms')} "
            f"| {'yes' if s['alive'] else 'no'} |"
        )
    return lines


def _against(
    what: str, a: dict[str, Any], b: dict[str, Any], key: str, scenario: str, limit: float
) -> tuple[str, str, str] | None:
    """``a`` (chatctl) ÷ ``b`` for one figure and scenario, against a lower bound."""
    if scenario not in a or scenario not in b:
        return None
    x = ratio(a[scenario][key], b[scenario][key])
    measured = f"{fmt(a[scenario][key])} vs {fmt(b[scenario][key])} = {fmt(x, 'x')}"
    return what, measured, verdict(x is not None and x >= limit)


def targets(
    c: dict[str, Any],
    b: dict[str, Any],
    n: dict[str, Any],
    r: dict[str, Any],
    args: argparse.Namespace,
) -> Iterator[tuple[str, str, str]]:
    for size in ("100", "500"):
        key = f"fanout-{size}"
        for row in (
            _against(f"#9 fan-out N={size}: per server CPU-s ≥ 0.95x baseline", c, b, "dpcpu",
                     key, 0.95),
            _against(f"#9 fan-out N={size}: per server CPU-s ≥ 1.5x ncat", c, n, "dpcpu", key,
                     1.5),
            _against(f"#5 fan-out N={size}: deliveries/s ≥ 0.8x ncat", c, n, "dps", key, 0.8),
        ):  # fmt: skip
            if row:
                yield row
    row = _against("#9 rate: per server CPU-s ≥ 1.0x ncat", c, n, "dpcpu", "rate", 1.0)
    if row:
        yield row
    if "rate" in c and "rate" in r:
        p99 = ratio(c["rate"]["p99"], r["rate"]["p99"])
        yield (
            "#9 rate: p99 ≤ 1.3x the relay's p99 (#5: ≤ 2x)",
            f"{fmt(c['rate']['p99'], 'ms')} ms vs {fmt(r['rate']['p99'], 'ms')} ms = "
            f"{fmt(p99, 'x')}",
            verdict(p99 is not None and p99 <= 1.3),
        )
    if "rooms-50x10" in c and "fanout-100" in c:
        x = ratio(c["rooms-50x10"]["dpcpu"], c["fanout-100"]["dpcpu"])
        yield (
            "#9 rooms 50x10: per server CPU-s ≥ 0.8x fan-out N=100's",
            f"{fmt(c['rooms-50x10']['dpcpu'])} vs {fmt(c['fanout-100']['dpcpu'])} = {fmt(x, 'x')}",
            verdict(x is not None and x >= 0.8),
        )
    if "rooms-50x10-rate" in c and "rate" in c:
        x = ratio(c["rooms-50x10-rate"]["p99"], c["rate"]["p99"])
        yield (
            "#9 rooms 50x10 at 200 msg/s: p99 ≤ 1.3x single-room `rate` p99",
            f"{fmt(c['rooms-50x10-rate']['p99'], 'ms')} ms vs {fmt(c['rate']['p99'], 'ms')} ms"
            f" = {fmt(x, 'x')}",
            verdict(x is not None and x <= 1.3),
        )
    yield from _issue5_rest(c, args)
    clean = all(v["lost"] == 0 and v["disconnected"] == 0 for v in c.values())
    yield ("gate: zero loss, no client cut off (chatctl, every scenario)", "", verdict(clean))


def _issue5_rest(c: dict[str, Any], args: argparse.Namespace) -> Iterator[tuple[str, str, str]]:
    if "stuck" in c and "fanout-100" in c:
        p99 = ratio(c["stuck"]["p99"], c["fanout-100"]["p99"])
        cut = c["stuck"]["cut_off"]
        yield (
            "#5 stuck: p99 ≤ 1.5x fan-out N=100 without it",
            f"{fmt(c['stuck']['p99'], 'ms')} ms vs {fmt(c['fanout-100']['p99'], 'ms')} ms = "
            f"{fmt(p99, 'x')}",
            verdict(p99 is not None and p99 <= 1.5),
        )
        every = cut is not None and cut.split("/")[0] == cut.split("/")[1]
        yield ("#5 stuck: the stuck client cut off", f"{cut} runs", verdict(every))
    full = args.idle_clients >= 15000 and args.idle_seconds <= 10
    if "idle" in c:
        i = c["idle"]
        ok = i["connected"] is not None and i["connected"] >= 15000 and i["alive"]
        yield (
            "#5 idle: 15 000 connected within 10 s, server alive",
            f"{fmt(i['connected'])} of {args.idle_clients} in {fmt(i['connect_s'], 'ms')} s",
            verdict(ok if full else None),
        )
        rss = i["rss_client"]
        yield (
            "#5 idle: ≤ 10 KiB server RSS per client",
            fmt(rss, "kib"),
            verdict(rss is not None and rss <= 10 * 1024),
        )
        yield (
            "#5 `chatctl status` within 50 ms with 15 000 connected (not joined)",
            f"{fmt(i['status_ms'], 'ms')} ms",
            verdict(i["status_ms"] is not None and i["status_ms"] <= 50 if full else None),
        )
    if "idle-join" in c:
        j = c["idle-join"]
        ok = j["connected"] is not None and j["connected"] >= 15000 and j["alive"]
        yield (
            "#5 idle, joined: 15 000 in the room within 10 s",
            f"{fmt(j['connected'])} of {args.idle_clients} in {fmt(j['connect_s'], 'ms')} s",
            verdict(ok if full else None),
        )


if __name__ == "__main__":
    sys.exit("run benchmarks/compare.py")
