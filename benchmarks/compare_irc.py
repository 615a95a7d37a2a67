"""compare.py's IRC figures (issue 12): chatctl's IRC door beside chatctl's own protocol and
beside ngIRCd, and a room with half its clients on each side.

The servers: ``irc`` is ``bench --irc`` (every client on the door of the server bench
starts), ``irc-half`` is ``bench --irc-share 0.5`` (half of them), ``ngircd`` is ngIRCd
started here afresh for each run (``compare_servers.start_ngircd``: penalties off) and
``ngircd-penalties`` the same with its flood penalties at their default, all driven by the
same IRC clients (``bench --irc --port P --server-pid PID``). ngIRCd 26 has no
echo-message, so its senders do not get their own messages back (a receiver fewer each).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from compare_format import fmt, ratio, verdict

#: compare.py's IRC servers, as the tables name them.
IRC_LABELS = {
    "irc": "chatctl, IRC door",
    "irc-half": "chatctl, half on IRC",
    "ngircd": "ngIRCd",
    "ngircd-penalties": "ngIRCd, penalties on",
}
#: Every IRC server's bench arguments: the door of the server bench starts, or half of the
#: clients there (the rest on chatctl's protocol). ngIRCd gets ``--irc`` with its port.
IRC_SPAWNED = {"irc": ["--irc"], "irc-half": ["--irc-share", "0.5"]}
IRC_SERVERS = ("irc", "irc-half", "ngircd", "ngircd-penalties")


def _by(results: dict[tuple[str, str], dict[str, Any]], server: str) -> dict[str, Any]:
    return {k[0]: v for k, v in results.items() if k[1] == server and "failed" not in v}


def irc_ratios(
    results: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace
) -> list[str]:
    """The door ÷ chatctl's protocol and ÷ ngIRCd, half on IRC ÷ all on chatctl's protocol."""
    c, i, half = _by(results, "chatctl"), _by(results, "irc"), _by(results, "irc-half")
    n, npen = _by(results, "ngircd"), _by(results, "ngircd-penalties")
    rows = [s for s in args.scenarios if s in i or s in half]
    if not rows:
        return []
    lines = [
        "",
        "### IRC (issue 12), from the medians",
        "",
        "| scenario | door per CPU-s ÷ chatctl | door p99 ÷ chatctl | door per CPU-s ÷ ngIRCd "
        "| door deliveries/s ÷ ngIRCd | door per CPU-s ÷ ngIRCd with penalties "
        "| half on IRC p99 ÷ chatctl | half on IRC per CPU-s ÷ chatctl |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in rows:
        cs, is_, hs = c.get(scenario, {}), i.get(scenario, {}), half.get(scenario, {})
        ns, nps = n.get(scenario, {}), npen.get(scenario, {})
        cells = [
            ratio(is_.get("dpcpu"), cs.get("dpcpu")),
            ratio(is_.get("p99"), cs.get("p99")),
            ratio(is_.get("dpcpu"), ns.get("dpcpu")),
            ratio(is_.get("dps"), ns.get("dps")),
            ratio(is_.get("dpcpu"), nps.get("dpcpu")),
            ratio(hs.get("p99"), cs.get("p99")),
            ratio(hs.get("dpcpu"), cs.get("dpcpu")),
        ]
        lines.append(f"| {scenario} | " + " | ".join(fmt(x, "x") for x in cells) + " |")
    return lines


def irc_targets(
    results: dict[tuple[str, str], dict[str, Any]],
) -> Iterator[tuple[str, str, str]]:
    c, i, half = _by(results, "chatctl"), _by(results, "irc"), _by(results, "irc-half")
    n = _by(results, "ngircd")
    for what, a, b, limit in (
        ("#12 fan-out N=100 over IRC: per server CPU-s ≥ 0.8x chatctl's protocol", i, c, 0.8),
        ("#12 fan-out N=100 over IRC: per server CPU-s ≥ 1.5x ngIRCd", i, n, 1.5),
    ):
        if "fanout-100" in a and "fanout-100" in b:
            x = ratio(a["fanout-100"]["dpcpu"], b["fanout-100"]["dpcpu"])
            measured = f"{fmt(a['fanout-100']['dpcpu'])} vs {fmt(b['fanout-100']['dpcpu'])}"
            yield what, f"{measured} = {fmt(x, 'x')}", verdict(x is not None and x >= limit)
    if "rate" in half and "rate" in c:
        x = ratio(half["rate"]["p99"], c["rate"]["p99"])
        yield (
            "#12 rate at 200 msg/s, half the clients on IRC: p99 ≤ 1.3x all on chatctl's",
            f"{fmt(half['rate']['p99'], 'ms')} ms vs {fmt(c['rate']['p99'], 'ms')} ms = "
            f"{fmt(x, 'x')}",
            verdict(x is not None and x <= 1.3),
        )
    ours = [v for s in ("irc", "irc-half") for k, v in _by(results, s).items()]
    if ours:
        clean = all(v["lost"] == 0 and v["disconnected"] == 0 for v in ours)
        yield (
            "#12 gate: zero loss, no client cut off over IRC (every scenario)",
            "",
            verdict(clean),
        )
