"""``chatctl serve``: its options, the ``ServerConfig`` they make, and the server log's run.

The limit options are not written here: one per entry of ``chatctl.server.config.LIMITS``
is added to the command's signature (Typer reads ``inspect.signature``), typed as the
``ServerConfig`` field and defaulting to it, so a limit is declared once, beside the
field it sets.
"""

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import typer

from chatctl.cli.options import DEFAULT_HOST, DEFAULT_PORT, SECURITY, PasswordFile, Port, password
from chatctl.server.config import LIMITS, Limit, ServerConfig

HISTORY = "History"
MODERATION = "Moderation"
MONITORING = "Monitoring"
#: The limit options go after this parameter: panels show in order of first appearance,
#: so Limits comes between the plain options and Security.
_LIMITS_AFTER = "verbose"


def _limit_parameter(
    limit: Limit, types: dict[str, Any], defaults: ServerConfig
) -> inspect.Parameter:
    kind = types[limit.name]
    option = typer.Option(
        limit.flag,
        metavar=None if kind is bool else limit.metavar,
        help=limit.help,
        min=limit.minimum,
        rich_help_panel=limit.panel,
    )
    return inspect.Parameter(
        limit.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[kind, option],
        default=getattr(defaults, limit.name),
    )


def _with_limits(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` taking one option per limit, in place of its ``**limits``."""
    signature = inspect.signature(command, eval_str=True)  # Typer reads it as it is
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    at = [p.name for p in params].index(_LIMITS_AFTER) + 1
    types, defaults = get_type_hints(ServerConfig), ServerConfig()
    params[at:at] = [_limit_parameter(limit, types, defaults) for limit in LIMITS]
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return command


@_with_limits
def serve(
    *,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="CHATCTL_HOST",
            metavar="HOST",
            help="Address to listen on; 0.0.0.0 opens the server to the LAN.",
        ),
    ] = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    irc: Annotated[
        str | None,
        typer.Option(
            "--irc",
            envvar="CHATCTL_IRC",
            metavar="[HOST:]PORT",
            help="Also let IRC clients (irssi, WeeChat, bots) in, on this port (6667 is "
            "IRC's); same rooms, names, --tls and password (PASS).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log the text of every message.")
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Serve TLS; without --tls-cert, with a self-signed certificate made once "
            "and kept in the config folder. Logs its fingerprint.",
            rich_help_panel=SECURITY,
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            metavar="FILE",
            help="Certificate (PEM chain) to serve (implies --tls).",
            rich_help_panel=SECURITY,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            metavar="FILE",
            help="Its private key (PEM), if not in the --tls-cert file.",
            rich_help_panel=SECURITY,
        ),
    ] = None,
    password_file: PasswordFile = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="CIDR",
            help="Only these networks may connect (CIDR, repeatable).",
            rich_help_panel=SECURITY,
        ),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            "--deny",
            metavar="CIDR",
            help="These networks may not connect (CIDR, repeatable; wins over --allow).",
            rich_help_panel=SECURITY,
        ),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            envvar="CHATCTL_HISTORY",
            metavar="PATH",
            help="The history file (SQLite) [default: history-PORT.sqlite3 in the data "
            "folder, $CHATCTL_DATA_DIR or $XDG_DATA_HOME/chatctl].",
            rich_help_panel=HISTORY,
        ),
    ] = None,
    no_history: Annotated[
        bool,
        typer.Option(
            "--no-history", help="Keep nothing: no replay, no file.", rich_help_panel=HISTORY
        ),
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            metavar="AGE",
            help="Delete messages older than AGE (90m, 12h, 30d, 1w) [default: keep all].",
            rich_help_panel=HISTORY,
        ),
    ] = None,
    keep_messages: Annotated[
        int | None,
        typer.Option(
            "--keep-messages",
            metavar="N",
            min=1,
            help="Keep at most N messages per room [default: all].",
            rich_help_panel=HISTORY,
        ),
    ] = None,
    no_pm_history: Annotated[
        bool,
        typer.Option(
            "--no-pm-history",
            help="Keep no private messages (room messages are kept).",
            rich_help_panel=HISTORY,
        ),
    ] = False,
    op: Annotated[
        list[str] | None,
        typer.Option(
            "--op",
            metavar="NAME",
            help="A server operator: may moderate every room (repeatable; a claimed name, "
            "so join as NAME once before anyone else can).",
            rich_help_panel=MODERATION,
        ),
    ] = None,
    ops_file: Annotated[
        Path | None,
        typer.Option(
            "--ops-file",
            metavar="PATH",
            help="More server operators, one name per line; read again on SIGHUP.",
            rich_help_panel=MODERATION,
        ),
    ] = None,
    no_room_founders: Annotated[
        bool,
        typer.Option(
            "--no-room-founders",
            help="The first one into an empty room does not become its operator.",
            rich_help_panel=MODERATION,
        ),
    ] = False,
    backplane: Annotated[
        str | None,
        typer.Option(
            "--backplane",
            envvar="CHATCTL_BACKPLANE",
            metavar="redis://HOST:PORT/DB",
            help="Share rooms, names and history with the other servers on this Redis "
            "(needs chatctl[redis]; docs/scaling.md).",
            rich_help_panel="Cluster",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="CHATCTL_WORKERS",
            metavar="N",
            min=1,
            help="Run N server processes on the port (SO_REUSEPORT), restarted if they "
            "die, so that one machine uses N cores (needs --backplane, a fixed --port).",
            rich_help_panel="Cluster",
        ),
    ] = 1,
    worker: Annotated[int | None, typer.Option("--worker", hidden=True, min=1)] = None,
    log_format: Annotated[
        Literal["text", "json"],
        typer.Option(
            "--log-format",
            envvar="CHATCTL_LOG_FORMAT",
            metavar="text|json",
            help="text: the log as read by people; json: one JSON object per line and event, "
            "for journald, Loki or ELK (docs/operations.md).",
            rich_help_panel=MONITORING,
        ),
    ] = "text",
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            envvar="CHATCTL_METRICS",
            metavar="[HOST:]PORT",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics (HOST: 127.0.0.1 "
            "unless given; docs/operations.md).",
            rich_help_panel=MONITORING,
        ),
    ] = None,
    **limits: Any,
) -> None:
    """Run a chat server and show its live connection log (Ctrl-C stops it)."""
    from chatctl.durations import parse_duration
    from chatctl.limits import parse_networks
    from chatctl.server.store import data_dir, default_path
    from chatctl.ui.serverlog import TlsSetup, run_serve

    for flag, networks in (("--allow", allow), ("--deny", deny)):
        try:
            parse_networks(networks or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=flag) from None
    if tls_key is not None and tls_cert is None:
        raise typer.BadParameter("needs --tls-cert", param_hint="--tls-key")
    if no_history and history is not None:
        raise typer.BadParameter("cannot go with --no-history", param_hint="--history")
    try:
        keep_seconds = parse_duration(keep) if keep is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--keep") from None
    # An ephemeral port (0) is a new server each run: no default file to come back to.
    persist = not no_history and (history is not None or port != 0)
    history_path = str(history or default_path(data_dir(), port)) if persist else None
    _check_operators(op or [], ops_file, persist)
    irc_host, irc_port = _irc_address(irc) if irc is not None else (None, None)
    metrics_host, metrics_port = (
        _irc_address(metrics, "--metrics", 9464) if metrics is not None else (None, None)
    )
    if workers > 1 and worker is None:
        _check_workers(port, backplane, irc_port)
    config = ServerConfig(
        host=host,
        port=port,
        report_messages=verbose,
        password=password(password_file),
        allow=tuple(allow or ()),
        deny=tuple(deny or ()),
        history=history_path,
        keep_seconds=keep_seconds,
        keep_messages=keep_messages,
        private_history=not no_pm_history,
        operators=tuple(op or ()),
        ops_file=str(ops_file) if ops_file is not None else None,
        room_founders=not no_room_founders,
        irc_host=irc_host,
        irc_port=irc_port,
        backplane=_backplane_url(backplane) if backplane is not None else None,
        metrics_port=metrics_port,
        metrics_host=metrics_host or ServerConfig.metrics_host,
        **limits,
    )
    setup = TlsSetup(tls_cert, tls_key) if tls or tls_cert else None
    log = None
    if log_format == "json":
        from chatctl.ui.jsonlog import JsonLog

        log = JsonLog(sys.stdout)
    if worker is not None:  # one of the processes of serve --workers
        from chatctl.server.workers import as_worker

        config = as_worker(config, worker)
    elif workers > 1:
        from chatctl.ui.workerlog import run_workers

        raise typer.Exit(run_workers(sys.argv[1:], workers, setup, log))
    raise typer.Exit(run_serve(config, setup, log))


def _backplane_url(url: str) -> str:
    """A Redis URL (redis://, rediss:// or unix://), or a usage error."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise typer.BadParameter(
            "a Redis URL: redis://HOST:PORT/DB (or rediss://, unix://PATH)",
            param_hint="--backplane",
        )
    return url


def _check_workers(port: int, backplane: str | None, irc_port: int | None) -> None:
    """``--workers N`` (N > 1) is one chat on one port: it needs a backplane and fixed ports."""
    if backplane is None:
        raise typer.BadParameter(
            "needs --backplane redis://HOST:PORT/DB: without it each worker would be a "
            "separate chat",
            param_hint="--workers",
        )
    if port == 0 or irc_port == 0:
        flag = "--port" if port == 0 else "--irc"
        raise typer.BadParameter(
            f"needs a fixed {flag}, not 0: the workers share it", param_hint="--workers"
        )


def _check_operators(names: list[str], ops_file: Path | None, history: bool) -> None:
    """Operators' names are names, and mean something only where names are claimed."""
    from chatctl.protocol import ProtocolError, check_name

    for name in names:
        try:
            check_name(name)
        except ProtocolError as exc:
            raise typer.BadParameter(exc.message, param_hint="--op") from None
    if (names or ops_file is not None) and not history:
        flag = "--op" if names else "--ops-file"
        raise typer.BadParameter(
            "server operators need claimed names, which need history: "
            "drop --no-history (with --port 0, give --history PATH)",
            param_hint=flag,
        )


def _irc_address(value: str, flag: str = "--irc", example: int = 6667) -> tuple[str | None, int]:
    """``6667``, ``0.0.0.0:6667`` or ``[::1]:6667``: the IRC door's (or ``flag``'s) host
    (None: not given) and port."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if sep else ""
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise typer.BadParameter(
            f"give a port ({example}) or HOST:PORT (0.0.0.0:{example})", param_hint=flag
        ) from None
    return host or None, number
