"""``chatctl join NAME``: the interactive client in a terminal, a line mode for pipes."""

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


def join(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Your name: 1-32 of A-Z a-z 0-9 _ - . (unique, any case)."
        ),
    ],
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Join the chat as NAME. Piped stdin: each line is a message."""
    from chatctl.ui.chat import run_join

    options = tls_options(tls, tls_ca, fingerprint)
    raise typer.Exit(run_join(host, port, name, options, password(password_file)))
