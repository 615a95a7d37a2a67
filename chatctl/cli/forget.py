"""``chatctl forget NAME``: give up a claimed name, on the server and in the claims file."""

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


def forget(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The claimed name to give up.")],
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Give up a name claimed from here: anyone may use it after."""
    from chatctl.ui.forget import run_forget

    options = tls_options(tls, tls_ca, fingerprint)
    raise typer.Exit(run_forget(host, port, name, options, password(password_file)))
