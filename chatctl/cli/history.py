"""``chatctl history``: what the server's history holds, without joining."""

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
    servers,
    tls_options,
)


def history(
    ctx: typer.Context,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    server: Servers = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (null: none kept).")
    ] = False,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Show the server's history file: messages, size, oldest; exit 15 if it keeps none."""
    from chatctl.ui.status import run_history

    where = servers(ctx, server, host, port)
    options = tls_options(tls, tls_ca, fingerprint)
    raise typer.Exit(run_history(where, as_json, options, password(password_file)))
