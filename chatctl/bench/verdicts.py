"""Reading a finished run: which side was busy, and the sentences a reader must see
(what shaped the figures besides speed: refusals, limits, losses, a frozen room).
"""

from __future__ import annotations

from collections import Counter

from chatctl.bench.config import BenchConfig
from chatctl.bench.results import BenchResult

#: Error codes and leave reasons that mean a policy, not speed, stopped something.
_LIMIT_WORDS = ("throttl", "full", "too_many", "limit", "rate", "busy", "slow")
_BUSY = 85.0


def _bottleneck(result: BenchResult) -> str:
    server = result.server.cpu_percent
    if result.servers:  # a cluster: is any one of them busy (each has one loop)?
        known = [s.cpu_percent for s in result.servers if s.cpu_percent is not None]
        server = max(known) if len(known) == len(result.servers) else None
    generator = result.generator.max_proc_cpu_percent
    busy = []
    if server is not None and server >= _BUSY:
        busy.append("server")
    if generator >= _BUSY:
        busy.append("generator")
    if (result.redis_cpu_percent or 0) >= _BUSY:
        busy.append("redis")
    if busy:
        return " and ".join(busy)
    if server is None:
        return "generator not busy; server unknown"
    return "neither"


def _notes(cfg: BenchConfig, result: BenchResult, connect_errors: Counter[str]) -> list[str]:
    notes: list[str] = []
    capped = sorted(
        code for code in {*result.errors, *connect_errors} if any(w in code for w in _LIMIT_WORDS)
    )
    if result.messages_refused:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(result.errors.items()))
        notes.append(
            f"the server refused {result.messages_refused} of {result.messages_sent} messages "
            f"({codes}): a server policy, not its speed, shaped these figures"
        )
    if connect_errors:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(connect_errors.items()))
        what = "connections failed" if cfg.scenario == "idle" else "clients could not join"
        notes.append(f"{sum(connect_errors.values())} {what} ({codes})")
        if "EMFILE" in connect_errors or "ENFILE" in connect_errors:
            notes.append("the generator ran out of file descriptors: raise `ulimit -n`")
    if capped and (connect_errors or (result.idle and result.idle.connected < result.idle.target)):
        notes.append(f"a server limit ({', '.join(capped)}), not its speed, capped the clients")
    if result.disconnected:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(result.disconnected.items()))
        notes.append(f"the server disconnected bench clients during the run ({reasons})")
    last = result.last_delivery_seconds
    if result.lost and last is not None and last < 0.8 * cfg.seconds:
        notes.append(
            f"deliveries stopped {last:.1f} s into a {cfg.seconds:g} s run: the room froze"
            + (" (held up by the client that never reads)" if cfg.scenario == "stuck" else "")
        )
    if result.lost:
        notes.append(
            f"{result.lost} of {result.deliveries_expected} deliveries never arrived "
            f"within {cfg.drain_timeout:g} s of the last one"
        )
    server_cpu = result.server.cpu_percent
    calm = result.generator.max_proc_cpu_percent < 60 and (server_cpu is None or server_cpu < 60)
    flooding = cfg.scenario in ("fanout", "stuck", "rooms") and cfg.rate is None
    if flooding and calm and result.senders and not result.lost:
        senders = result.senders * (result.rooms if cfg.scenario == "rooms" else 1)
        per_sender = result.messages_sent / senders / cfg.seconds
        if not cfg.spawns_server:
            pacing = "flood penalties" if cfg.irc_server else "flood pacing (serve --rate/--burst)"
            notes.append(
                f"senders averaged {per_sender:,.0f} msg/s each while neither the generator "
                "nor the server was busy: something other than speed held them back, most "
                f"likely the server's {pacing} or a small --window"
            )
    p50 = result.latency.p50_ms
    if cfg.rate is not None and not cfg.spawns_server and (p50 or 0) > 250:
        notes.append(
            "messages queued up behind the server's pacing (latency grows with the run): "
            "rate-limited, not slow"
        )
    if cfg.scenario == "idle" and result.idle is not None:
        idle = result.idle
        if idle.connected < idle.target and not connect_errors:
            notes.append(
                f"{idle.connected} of {idle.target} clients connected within {cfg.seconds:g} s"
            )
        if idle.confirmed < idle.connected:
            notes.append(
                f"only {idle.confirmed} of {idle.connected} connected clients were served "
                "(answered, or received the probe line)"
            )
    if result.irc_clients:
        where = f"the IRC server at {result.host}:{result.port}"
        if result.server.spawned:
            where = f"the IRC door ({result.host}:{result.irc_port})"
        notes.append(f"{result.irc_clients} of {result.clients} clients spoke IRC, to {where}")
    if not result.echo and result.irc_clients:
        notes.append(
            "the server does not send a message back to its sender (no IRCv3 echo-message): "
            "each message has one receiver fewer, as with a line relay"
        )
    other = result.machine.other_percent
    if other is not None and other > 15 and result.server.cpu_percent is not None:
        notes.append(
            f"other programs used {other:.0f} % of a CPU during the run "
            f"({result.machine.cpus} CPUs): the figures are noisy"
        )
    if result.backplane is not None:
        kept = "its append-only file on" if result.redis_aof else "no persistence, AOF off"
        spread = f"{result.cluster} servers, the clients round-robin over them"
        if result.cluster == 1:
            spread = "one server"
        redis = ""
        if result.redis_cpu_percent is not None:
            redis = f"; Redis used {result.redis_cpu_percent:.0f} % of a CPU, not counted in it"
        notes.append(
            f"a cluster run: {spread}, on a redis-server bench started ({kept}); server CPU "
            f"is the servers' summed{redis}"
        )
    if result.server.alive is False:
        what = "a server process is" if result.servers else "the server process is"
        notes.append(f"{what} gone")
    if result.stuck is not None and not result.stuck.cut_off:
        notes.append("the stuck client was not cut off")
    return notes
