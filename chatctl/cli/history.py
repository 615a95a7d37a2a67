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
    TlsCa,
    UseTls,
    password,
    tls_options,
)


def history(
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
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

    options = tls_options(tls, tls_ca, fingerprint)
    raise typer.Exit(run_history(host, port, as_json, options, password(password_file)))
