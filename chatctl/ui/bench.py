"""``chatctl bench``: a progress bar while it runs, then a table of the figures (or ``--json``)."""

from __future__ import annotations

import sys

import msgspec
from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from chatctl.bench import BenchConfig, BenchError, BenchProgress, BenchResult, run_bench
from chatctl.exitcodes import ExitCode
from chatctl.ui.errors import print_error
from chatctl.ui.units import size


def run_bench_command(cfg: BenchConfig, as_json: bool) -> int:
    try:
        cfg = cfg.resolved()
    except BenchError as exc:
        print_error(str(exc))
        return ExitCode.USAGE
    err = Console(stderr=True, highlight=False)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("starting", total=cfg.seconds)

            def update(p: BenchProgress) -> None:
                progress.update(task, completed=min(p.elapsed, p.total), description=_phase(p))

            result = run_bench(cfg, update)
    except BenchError as exc:
        print_error(str(exc))
        return ExitCode.UNREACHABLE
    if as_json:
        sys.stdout.write(msgspec.json.encode(result.to_builtins()).decode() + "\n")
    else:
        Console(highlight=False).print(bench_report(result))
    return ExitCode.OK


def _phase(p: BenchProgress) -> str:
    if p.phase == "connecting":
        return f"connecting: {p.clients:,} clients"
    if p.phase in ("running", "draining"):
        return f"{p.phase}: {p.messages:,} messages, {p.deliveries:,} deliveries"
    return p.phase


def number(value: float) -> str:
    """1234567 -> 1.23 M; small numbers as they are."""
    for limit, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def bench_report(r: BenchResult) -> Group:
    """The figures of one run: a heading, a two-column table, then the notes."""
    if r.server.spawned:
        loop = f", {r.server.event_loop}" if r.server.event_loop else ""
        kept = "history on a temporary file" if r.server.history else "no history"
        where = f"chatctl serve on {r.host}:{r.port}, started by bench (pacing off, {kept}{loop})"
        if r.backplane is not None:
            ports = ", ".join(str(s.port) for s in r.servers)
            aof = "AOF on" if r.redis_aof else "AOF off"
            many = f"{r.cluster} chatctl serve" if r.cluster > 1 else "one chatctl serve"
            where = (
                f"{many} --backplane on {r.host}:{ports}, sharing {r.backplane} ({aof}), "
                f"started by bench (pacing off, {kept}{loop})"
            )
    else:
        kind = "raw line server" if r.raw else "server"
        where = f"{kind} at {r.host}:{r.port}, not started by bench"
    if r.protocol is not None and r.protocol < 2:
        where += f" · it speaks protocol version {r.protocol}: bench spoke it too"
    load = f"{r.clients:,} clients"
    if r.scenario == "rooms":
        each = f", in {r.rooms_per_client} rooms each" if r.rooms_per_client > 1 else ""
        load = f"{r.rooms} rooms x {r.members} members ({r.clients:,} clients{each})"
    pace = f"window {r.window}" if r.rate is None else f"{number(r.rate)} msg/s in total"
    if r.scenario == "rooms":
        load += f", {r.senders} sending in each ({pace})"
    elif r.scenario in ("fanout", "stuck", "rate"):
        load += f", {r.senders} sending ({pace})"
    if r.scenario != "idle":
        load += f", {r.size}-byte messages"
    heading = Text.assemble(
        (f"chatctl bench {r.scenario}", "bold"),
        f" · {load} · {r.seconds:g} s · {r.generator.procs} generator process(es)\n",
        (where, "dim"),
    )
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: str, style: str = "") -> None:
        table.add_row(Text(label), Text(value, style=style))

    if r.scenario != "idle":
        row("deliveries/s", number(r.deliveries_per_second), "bold")
        row("messages in/s", number(r.messages_per_second))
        lat = r.latency
        row(
            "latency p50 / p99 / max",
            f"{_ms(lat.p50_ms)} / {_ms(lat.p99_ms)} / {_ms(lat.max_ms)}  ({lat.samples:,} samples)",
        )
        for label, split in (
            ("  sender on another server", r.latency_cross_server),
            ("  sender on the same server", r.latency_same_server),
        ):
            if split is not None:
                row(
                    label,
                    f"{_ms(split.p50_ms)} / {_ms(split.p99_ms)} / {_ms(split.max_ms)}  "
                    f"({split.samples:,} samples)",
                )
        lost = f"{r.lost:,} of {r.deliveries_expected:,} deliveries expected"
        row("lost", lost, "green" if r.lost == 0 else "bold red")
    server = r.server
    if server.cpu_percent is not None:
        row("server CPU", f"{server.cpu_percent:.0f} % ({server.cpu_seconds or 0:.2f} s)")
        if r.deliveries_per_server_cpu_second is not None:
            row("deliveries per server CPU-second", number(r.deliveries_per_server_cpu_second))
        for s in r.servers:
            cpu = "-" if s.cpu_percent is None else f"{s.cpu_percent:.0f} % ({s.cpu_seconds:.2f} s)"
            row(f"  server :{s.port}", f"{cpu}, {s.clients or 0:,} clients")
    if r.redis_cpu_seconds is not None and r.redis_cpu_percent is not None:
        info = r.redis_info_cpu_seconds
        own = "" if info is None else f"; INFO cpu {info:.2f} s"
        row("Redis CPU", f"{r.redis_cpu_percent:.0f} % ({r.redis_cpu_seconds:.2f} s{own})")
        if r.deliveries_per_cpu_second_with_redis is not None:
            row(
                "deliveries per CPU-s, servers + Redis",
                number(r.deliveries_per_cpu_second_with_redis),
            )
    if server.peak_rss_bytes is not None:
        row("server peak RSS", size(server.peak_rss_bytes))
    gen = r.generator
    row(
        "generator CPU",
        f"{gen.cpu_percent:.0f} % over {gen.procs} process(es), "
        f"busiest {gen.max_proc_cpu_percent:.0f} %",
    )
    row("busy side", r.bottleneck)
    machine = r.machine
    if machine.busy_percent is not None:
        others = "" if machine.other_percent is None else f", others {machine.other_percent:.0f} %"
        row("machine CPU", f"{machine.busy_percent:.0f} % of {machine.cpus * 100} %{others}")
    if r.idle is not None:
        idle = r.idle
        took = "" if idle.seconds_to_connect is None else f" in {idle.seconds_to_connect:.1f} s"
        row("clients connected", f"{idle.connected:,} of {idle.target:,}{took}", "bold")
        row("clients served", f"{idle.confirmed:,}")
        if idle.server_rss_per_client_bytes is not None:
            row("server RSS per client", size(idle.server_rss_per_client_bytes), "bold")
        if idle.status_ms is not None:
            row("chatctl status took", _ms(idle.status_ms))
    if r.stuck is not None:
        cut = r.stuck.cut_off
        row(
            "stuck client cut off",
            f"{'yes' if cut else 'no'} ({r.stuck.how})",
            "green" if cut else "red",
        )
    if r.errors:
        row("error frames", _counts(r.errors), "yellow")
    if r.disconnected:
        row("disconnected", _counts(r.disconnected), "yellow")
    parts: list[Text | Table] = [heading, table]
    for note in r.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Group(*parts)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in sorted(counts.items()))
