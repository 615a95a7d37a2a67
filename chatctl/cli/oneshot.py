"""``chatctl send`` and ``chatctl tail``: one-shot commands for scripts and cron (``export``
takes ``--as`` from here)."""

import sys
from typing import Annotated

import typer

from chatctl.cli.options import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Fingerprint,
    Host,
    PasswordFile,
    Port,
    Servers,
    TlsCa,
    UseTls,
    password,
    room_option,
    servers,
    tls_options,
)

As = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="CHATCTL_NAME",
        metavar="NAME",
        help="The name to speak under [default: your login name; NAME-send, NAME-tail or "
        "NAME-export while NAME is online].",
    ),
]
Room = Annotated[
    str | None, typer.Option("--room", "-r", metavar="ROOM", help="The room [default: lobby].")
]


def send(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The message; - reads stdin.")],
    room: Room = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="NAME", help="A private message to NAME.")
    ] = None,
    name: As = None,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    server: Servers = None,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Send one message; exit 0 once the server relayed it, 14 if it refused it."""
    from chatctl.ui.oneshot import default_name, run_send

    if room is not None and to is not None:
        raise typer.BadParameter("cannot go with --to", param_hint="--room")
    where = servers(ctx, server, host, port)
    body = sys.stdin.read().rstrip("\n") if text == "-" else text
    options = tls_options(tls, tls_ca, fingerprint)
    who = name or default_name()
    target = room_option(room) if room is not None else None
    code = run_send(where, who, body, target, to, options, password(password_file))
    raise typer.Exit(code)


def tail(
    ctx: typer.Context,
    room: Room = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="AGE", help="Every message of the last AGE (90m, 2h, 1d)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print new messages as they come.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per message (a message frame).")
    ] = False,
    name: As = None,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    server: Servers = None,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Print a room's last messages (--since AGE: all of them), then follow (-f)."""
    from chatctl.durations import parse_duration
    from chatctl.ui.oneshot import default_name, run_tail, since_time

    try:
        seconds = parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    options = tls_options(tls, tls_ca, fingerprint)
    code = run_tail(
        servers(ctx, server, host, port),
        name or default_name(),
        room_option(room) if room is not None else "#lobby",
        since_time(seconds),
        follow,
        as_json,
        options,
        password(password_file),
    )
    raise typer.Exit(code)
