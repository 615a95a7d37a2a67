"""``chatctl export``: a room's history as an incident timeline (Markdown, text or JSON lines)."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from chatctl.cli.oneshot import As
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

#: The formats of ``chatctl.ui.timeline.FORMATS`` (a test keeps the two equal), spelt out
#: so that Typer checks, completes and lists them.
Format = Literal["md", "txt", "json"]


def export(
    ctx: typer.Context,
    room: Annotated[str, typer.Option("--room", "-r", metavar="ROOM", help="The room.")],
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="AGE", help="Only the last AGE (90m, 2h, 1d) [default: all]."
        ),
    ] = None,
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            metavar="md|txt|json",
            help="md: Markdown; txt: a line a message; json: a JSON object a line, as tail --json.",
        ),
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE, whole or not at all [default: stdout].",
        ),
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
    """Write a room's history as a timeline: exit 15 if the server keeps none."""
    from chatctl.durations import parse_duration
    from chatctl.ui.export import run_export
    from chatctl.ui.oneshot import default_name, since_time

    try:
        seconds = parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    where = servers(ctx, server, host, port)
    options = tls_options(tls, tls_ca, fingerprint)
    code = run_export(
        where,
        name or default_name(),
        room_option(room),
        since_time(seconds),
        format,
        output,
        options,
        password(password_file),
    )
    raise typer.Exit(code)
