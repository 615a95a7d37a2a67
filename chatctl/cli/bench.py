"""``chatctl bench``: load a server (its own or one running) and report what it sustained."""

from typing import Annotated, Literal

import typer

from chatctl.cli.options import DEFAULT_HOST, DEFAULT_PORT

#: The scenarios of ``chatctl.bench.config.SCENARIOS`` (a test keeps the two equal),
#: spelt out so that Typer checks, completes and lists them.
Scenario = Literal["fanout", "rate", "idle", "stuck", "rooms"]


def bench(
    scenario: Annotated[
        Scenario,
        typer.Argument(
            metavar="SCENARIO",
            help="fanout: senders flood a room, window-limited. rate: a fixed total rate, "
            "for latency. idle: how many idle clients connect, memory per client. "
            "stuck: fanout plus one client that never reads. rooms: many rooms of a few "
            "members, flooding or at a fixed --rate.",
        ),
    ] = "fanout",
    clients: Annotated[
        int | None,
        typer.Option(
            "--clients",
            "-n",
            min=1,
            metavar="N",
            help="Clients (100; idle: 1000; rooms: rooms x members / rooms per client).",
        ),
    ] = None,
    senders: Annotated[
        int | None,
        typer.Option(
            "--senders",
            "-s",
            min=1,
            metavar="N",
            help="Clients that send (10; rate: all; rooms: in each room, 1).",
        ),
    ] = None,
    size: Annotated[
        int, typer.Option("--size", metavar="BYTES", help="Message text length in bytes.")
    ] = 64,
    window: Annotated[
        int,
        typer.Option(
            "--window",
            min=1,
            metavar="N",
            help="fanout/stuck/rooms: messages in flight per sender.",
        ),
    ] = 32,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.001,
            metavar="N",
            help="Total messages per second, all senders together (rate: 200; rooms: "
            "instead of flooding).",
        ),
    ] = None,
    rooms: Annotated[
        int | None,
        typer.Option("--rooms", min=1, metavar="N", help="rooms: how many rooms (50)."),
    ] = None,
    members: Annotated[
        int | None,
        typer.Option("--members", min=2, metavar="N", help="rooms: members in each room (10)."),
    ] = None,
    rooms_per_client: Annotated[
        int,
        typer.Option(
            "--rooms-per-client",
            min=1,
            max=50,
            metavar="N",
            help="rooms: rooms each client is in (members spread so each room has --members).",
        ),
    ] = 1,
    seconds: Annotated[
        float, typer.Option("--seconds", "-t", metavar="SECONDS", help="How long to send.")
    ] = 5.0,
    procs: Annotated[
        int,
        typer.Option(
            "--procs", "-p", min=1, metavar="N", help="Generator processes sharing the clients."
        ),
    ] = 1,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="HOST",
            help="Drive an existing server (default: start one on loopback).",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, metavar="PORT", help="Port of an existing server."
        ),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Plain lines, for line relays such as ncat --chat.")
    ] = False,
    irc: Annotated[
        bool,
        typer.Option(
            "--irc",
            help="Clients speak IRC: to the IRC door of the server bench starts (serve --irc "
            "0), or to the IRC server at --host/--port (ngIRCd, a door).",
        ),
    ] = False,
    irc_share: Annotated[
        float | None,
        typer.Option(
            "--irc-share",
            min=0.001,
            max=1.0,
            metavar="FRACTION",
            help="This fraction of the clients on IRC, the rest on chatctl's protocol, in the "
            "same rooms of the server bench starts (0.5: half).",
        ),
    ] = None,
    server_pid: Annotated[
        int | None,
        typer.Option(
            "--server-pid", metavar="PID", help="Read CPU and memory of this server process."
        ),
    ] = None,
    join_room: Annotated[
        bool, typer.Option("--join", help="idle: clients join the room instead of only connecting.")
    ] = False,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="The server bench starts keeps history, in a temporary file (removed "
            "afterwards); without it, --no-history.",
        ),
    ] = False,
    cluster: Annotated[
        int,
        typer.Option(
            "--cluster",
            min=1,
            metavar="N",
            help="Start N servers sharing a Redis backplane (a redis-server bench starts, "
            "AOF off) and spread the clients round-robin over them; 1: one server.",
        ),
    ] = 1,
    backplane: Annotated[
        bool,
        typer.Option(
            "--backplane",
            help="With --cluster 1: the one server on a Redis backplane bench starts (what "
            "the backplane itself costs).",
        ),
    ] = False,
    redis_aof: Annotated[
        bool,
        typer.Option(
            "--redis-aof",
            help="The redis-server of --cluster/--backplane keeps its append-only file "
            "(appendfsync everysec).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure a server under load: deliveries/s, latency, loss, CPU and memory."""
    from chatctl.bench import BenchConfig
    from chatctl.ui.bench import run_bench_command

    existing = host is not None or port is not None
    config = BenchConfig(
        scenario=scenario,
        clients=clients,
        senders=senders,
        size=size,
        window=window,
        rate=rate,
        rooms=rooms,
        members=members,
        rooms_per_client=rooms_per_client,
        seconds=seconds,
        procs=procs,
        host=(host or DEFAULT_HOST) if existing else None,
        port=(port or DEFAULT_PORT) if existing else None,
        raw=raw,
        irc=irc,
        irc_share=irc_share,
        server_pid=server_pid,
        join=join_room,
        history=history,
        cluster=cluster,
        backplane=backplane,
        redis_aof=redis_aof,
    )
    raise typer.Exit(run_bench_command(config, as_json))
