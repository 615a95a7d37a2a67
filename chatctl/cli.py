"""The ``chatctl`` command: thin Typer glue over the cores and the terminal UI.

Each command imports its UI module only when it runs, so ``chatctl status``
and shell completion do not pay for prompt_toolkit.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chatctl import __version__
from chatctl.eventloop import LoopChoiceError
from chatctl.exitcodes import ExitCode
from chatctl.server.config import ServerConfig

if TYPE_CHECKING:
    from chatctl.client import TlsOptions

app = typer.Typer(
    name="chatctl",
    help="Terminal group chat: start a server, join it, see who is there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000

Host = Annotated[
    str,
    typer.Option("--host", envvar="CHATCTL_HOST", help="Server address.", show_default=True),
]
Port = Annotated[
    int,
    typer.Option(
        "--port", envvar="CHATCTL_PORT", min=0, max=65535, help="TCP port.", show_default=True
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chatctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Terminal group chat: start a server, join it, see who is there."""


def _limit(flag: str, help: str, minimum: float = 0) -> Any:
    return typer.Option(flag, help=help, min=minimum, rich_help_panel="Limits")


#: The one place defaults live: the options below show these.
_D = ServerConfig()

_SECURITY = "Security"

PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the room password from this file (or set CHATCTL_PASSWORD); "
        "never on the command line, where other users see it.",
        rich_help_panel=_SECURITY,
    ),
]
UseTls = Annotated[
    bool,
    typer.Option(
        "--tls",
        help="Connect with TLS: verified by the system CAs or --tls-ca, else pinned on "
        "first contact.",
        rich_help_panel=_SECURITY,
    ),
]
TlsCa = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        help="Verify the server with this CA file (implies --tls).",
        rich_help_panel=_SECURITY,
    ),
]
Fingerprint = Annotated[
    str | None,
    typer.Option(
        "--fingerprint",
        help="Trust the server whose certificate has this SHA256:... fingerprint, as "
        "`serve --tls` logs it (implies --tls).",
        rich_help_panel=_SECURITY,
    ),
]


def _password(path: Path | None) -> str | None:
    from chatctl.ui.access import PasswordFileError, read_password

    try:
        return read_password(path)
    except PasswordFileError as exc:
        from chatctl.ui.errors import print_error

        print_error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None


def _tls_options(tls: bool, ca: Path | None, fingerprint: str | None) -> TlsOptions | None:
    if not (tls or ca or fingerprint):
        return None
    from chatctl.client import TlsOptions
    from chatctl.tls import parse_fingerprint

    expected = None
    if fingerprint is not None:
        try:
            expected = parse_fingerprint(fingerprint)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fingerprint") from None
    return TlsOptions(cafile=ca, fingerprint=expected)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="CHATCTL_HOST",
            help="Address to listen on; 0.0.0.0 opens the server to the LAN.",
        ),
    ] = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log the text of every message.")
    ] = False,
    rate: Annotated[
        float,
        _limit(
            "--rate", "Messages per second per client once the burst is spent; 0 turns pacing off."
        ),
    ] = _D.rate,
    burst: Annotated[
        int, _limit("--burst", "Messages a client may send at once before pacing.", 1)
    ] = _D.burst,
    max_clients: Annotated[
        int, _limit("--max-clients", "Connections at once; more get server_full.", 1)
    ] = _D.max_clients,
    announce_limit: Annotated[
        int,
        _limit(
            "--announce-limit",
            "Announce joins and leaves while the room has at most this many people (0: never).",
            0,
        ),
    ] = _D.announce_limit,
    max_per_address: Annotated[
        int,
        _limit("--max-per-address", "Connections at once from one address (loopback exempt).", 1),
    ] = _D.max_per_address,
    max_new_per_minute: Annotated[
        int,
        _limit(
            "--max-new-per-minute",
            "New connections per minute from one address (loopback exempt).",
            1,
        ),
    ] = _D.max_new_per_minute,
    limit_loopback: Annotated[
        bool,
        typer.Option(
            "--limit-loopback",
            help="Apply the per-address limits to loopback too.",
            rich_help_panel="Limits",
        ),
    ] = False,
    max_queue: Annotated[
        int,
        _limit("--max-queue", "Bytes queued to a client before it is cut off (slow_consumer).", 1),
    ] = _D.max_queue_bytes,
    soft_queue: Annotated[
        int,
        _limit(
            "--soft-queue",
            "Bytes queued to a client that, held for --soft-queue-time, cut it off.",
            1,
        ),
    ] = _D.soft_queue_bytes,
    soft_queue_time: Annotated[
        float, _limit("--soft-queue-time", "Seconds a client may stay over --soft-queue.")
    ] = _D.soft_queue_seconds,
    max_frame: Annotated[
        int, _limit("--max-frame", "Longest frame in bytes (frame_too_long, then closed).", 64)
    ] = _D.max_frame_bytes,
    max_message: Annotated[
        int, _limit("--max-message", "Longest message text in UTF-8 bytes (message_too_long).", 1)
    ] = _D.max_text_bytes,
    max_lines: Annotated[
        int, _limit("--max-lines", "Most lines in one message (message_too_long).", 1)
    ] = _D.max_text_lines,
    max_errors: Annotated[
        int, _limit("--max-errors", "Errors within --error-window that close a connection.", 1)
    ] = _D.max_errors,
    error_window: Annotated[
        float, _limit("--error-window", "Seconds over which --max-errors is counted.")
    ] = _D.error_window,
    handshake_timeout: Annotated[
        float, _limit("--handshake-timeout", "Seconds to send hello before being closed.")
    ] = _D.handshake_timeout,
    ping_interval: Annotated[
        float, _limit("--ping-interval", "Seconds of silence before a client is pinged.")
    ] = _D.ping_interval,
    ping_timeout: Annotated[
        float, _limit("--ping-timeout", "Seconds to answer a ping before being dropped.")
    ] = _D.ping_timeout,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Serve TLS; without --tls-cert, with a self-signed certificate made once "
            "and kept in the config folder. Logs its fingerprint.",
            rich_help_panel=_SECURITY,
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            help="Certificate (PEM chain) to serve (implies --tls).",
            rich_help_panel=_SECURITY,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            help="Its private key (PEM), if not in the --tls-cert file.",
            rich_help_panel=_SECURITY,
        ),
    ] = None,
    password_file: PasswordFile = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Only these networks may connect (CIDR, repeatable).",
            rich_help_panel=_SECURITY,
        ),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            "--deny",
            help="These networks may not connect (CIDR, repeatable; wins over --allow).",
            rich_help_panel=_SECURITY,
        ),
    ] = None,
    tls_handshake_timeout: Annotated[
        float, _limit("--tls-handshake-timeout", "Seconds a TLS handshake may take.", 0.001)
    ] = _D.tls_handshake_timeout,
) -> None:
    """Run a chat server and show its live connection log (Ctrl-C stops it)."""
    from chatctl.limits import parse_networks
    from chatctl.ui.serverlog import TlsSetup, run_serve

    for flag, networks in (("--allow", allow), ("--deny", deny)):
        try:
            parse_networks(networks or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=flag) from None
    if tls_key is not None and tls_cert is None:
        raise typer.BadParameter("needs --tls-cert", param_hint="--tls-key")
    password = _password(password_file)

    config = ServerConfig(
        host=host,
        port=port,
        report_messages=verbose,
        rate=rate,
        burst=burst,
        max_clients=max_clients,
        announce_limit=announce_limit,
        max_per_address=max_per_address,
        max_new_per_minute=max_new_per_minute,
        limit_loopback=limit_loopback,
        max_queue_bytes=max_queue,
        soft_queue_bytes=soft_queue,
        soft_queue_seconds=soft_queue_time,
        max_frame_bytes=max_frame,
        max_text_bytes=max_message,
        max_text_lines=max_lines,
        max_errors=max_errors,
        error_window=error_window,
        handshake_timeout=handshake_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        tls_handshake_timeout=tls_handshake_timeout,
        password=password,
        allow=tuple(allow or ()),
        deny=tuple(deny or ()),
    )
    setup = TlsSetup(tls_cert, tls_key) if tls or tls_cert else None
    raise typer.Exit(run_serve(config, setup))


@app.command()
def join(
    name: Annotated[
        str, typer.Argument(help="Your name: 1-32 of A-Z a-z 0-9 _ - . (unique, any case).")
    ],
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    room: Annotated[
        list[str] | None,
        typer.Option(
            "--room",
            "-r",
            help="A room to be in (repeatable; '#' optional); you type into the first. "
            "Default: lobby.",
        ),
    ] = None,
    commands: Annotated[
        bool,
        typer.Option(
            "--commands",
            help="Piped: lines starting with / are commands (/join, /msg, ...), as typed "
            "at the prompt; without it every line is text.",
        ),
    ] = False,
    no_bell: Annotated[
        bool, typer.Option("--no-bell", help="No terminal bell on a mention or private message.")
    ] = False,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Join the chat as NAME. Piped stdin: each line is a message."""
    from chatctl.commands import room_arg
    from chatctl.protocol import ProtocolError
    from chatctl.ui.chat import JoinOptions, run_join

    try:
        rooms = [room_arg(r) for r in room] if room else None
    except ProtocolError as exc:
        raise typer.BadParameter(exc.message, param_hint="--room") from None
    options = JoinOptions(
        rooms=rooms,
        tls=_tls_options(tls, tls_ca, fingerprint),
        password=_password(password_file),
        commands=commands,
        bell=not no_bell,
    )
    raise typer.Exit(run_join(host, port, name, options))


@app.command()
def status(
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every user (the table stops at 100).")
    ] = False,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Show who is connected and the server's counters, without joining."""
    from chatctl.ui.status import run_status

    options = _tls_options(tls, tls_ca, fingerprint)
    code = run_status(host, port, as_json, options, _password(password_file), show_all)
    raise typer.Exit(code)


def main() -> None:
    """Entry point: no traceback reaches a user unless CHATCTL_DEBUG is set."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.OK)
    except LoopChoiceError as exc:  # CHATCTL_LOOP is set wrong: like a bad option
        from chatctl.ui.errors import print_error

        print_error(str(exc))
        sys.exit(ExitCode.USAGE)
    except Exception as exc:
        if os.environ.get("CHATCTL_DEBUG"):
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"chatctl: internal error: {type(exc).__name__}: {exc}\n"
                "Run again with CHATCTL_DEBUG=1 to see the traceback, and please report it.\n"
            )
        sys.exit(ExitCode.INTERNAL)


def _scenarios() -> list[str]:
    return ["fanout", "rate", "idle", "stuck"]


@app.command()
def bench(
    scenario: Annotated[
        str,
        typer.Argument(
            help="fanout: senders flood a room, window-limited. rate: a fixed total rate, "
            "for latency. idle: how many idle clients connect, memory per client. "
            "stuck: fanout plus one client that never reads.",
            autocompletion=_scenarios,
        ),
    ] = "fanout",
    clients: Annotated[
        int | None,
        typer.Option("--clients", "-n", min=1, help="Clients (100; idle: 1000)."),
    ] = None,
    senders: Annotated[
        int | None,
        typer.Option("--senders", "-s", min=1, help="Clients that send (10; rate: all)."),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Message text length in bytes.")] = 64,
    window: Annotated[
        int, typer.Option("--window", min=1, help="fanout/stuck: messages in flight per sender.")
    ] = 32,
    rate: Annotated[
        float, typer.Option("--rate", help="rate: total messages per second, all senders together.")
    ] = 200.0,
    seconds: Annotated[float, typer.Option("--seconds", "-t", help="How long to send.")] = 5.0,
    procs: Annotated[
        int, typer.Option("--procs", "-p", min=1, help="Generator processes sharing the clients.")
    ] = 1,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Drive an existing server (default: start one on loopback)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port of an existing server.")
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Plain lines, for line relays such as ncat --chat.")
    ] = False,
    server_pid: Annotated[
        int | None, typer.Option("--server-pid", help="Read CPU and memory of this server process.")
    ] = None,
    join_room: Annotated[
        bool, typer.Option("--join", help="idle: clients join the room instead of only connecting.")
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
        seconds=seconds,
        procs=procs,
        host=(host or DEFAULT_HOST) if existing else None,
        port=(port or DEFAULT_PORT) if existing else None,
        raw=raw,
        server_pid=server_pid,
        join=join_room,
    )
    raise typer.Exit(run_bench_command(config, as_json))
