"""``chatctl status``: who is connected and the server's counters, without joining."""

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


def status(
    ctx: typer.Context,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    server: Servers = None,
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

    where = servers(ctx, server, host, port)
    options = tls_options(tls, tls_ca, fingerprint)
    code = run_status(where, as_json, options, password(password_file), show_all)
    raise typer.Exit(code)
