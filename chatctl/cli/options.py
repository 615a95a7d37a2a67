"""Options more than one command takes (address, TLS, password), and what they mean.

Declared once here, so ``join`` and ``status`` (and ``serve`` where it shares them)
say the same thing in ``--help``. Nothing heavy at import: the client and the terminal
code load inside the helpers, when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chatctl.exitcodes import ExitCode

if TYPE_CHECKING:
    from chatctl.addresses import Address
    from chatctl.client import TlsOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
SECURITY = "Security"

Host = Annotated[
    str,
    typer.Option(
        "--host", envvar="CHATCTL_HOST", metavar="HOST", help="Server address.", show_default=True
    ),
]
Port = Annotated[
    int,
    typer.Option(
        "--port",
        envvar="CHATCTL_PORT",
        min=0,
        max=65535,
        metavar="PORT",
        help="TCP port.",
        show_default=True,
    ),
]
Servers = Annotated[
    list[str] | None,
    typer.Option(
        "--server",
        envvar="CHATCTL_SERVERS",
        metavar="HOST:PORT",
        help="Repeatable: the first that answers; after a loss, join tries the next. "
        "HOST alone: at --port; or [IPv6]:PORT.",
        show_default=False,
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        metavar="FILE",
        help="Read the room password from this file (or set CHATCTL_PASSWORD); "
        "never on the command line, where other users see it.",
        rich_help_panel=SECURITY,
    ),
]
UseTls = Annotated[
    bool,
    typer.Option(
        "--tls",
        help="Connect with TLS: verified by the system CAs or --tls-ca, else pinned on "
        "first contact.",
        rich_help_panel=SECURITY,
    ),
]
TlsCa = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        metavar="FILE",
        help="Verify the server with this CA file (implies --tls).",
        rich_help_panel=SECURITY,
    ),
]
Fingerprint = Annotated[
    str | None,
    typer.Option(
        "--fingerprint",
        metavar="FINGERPRINT",
        help="Trust the server whose certificate has this SHA256:... fingerprint, as "
        "`serve --tls` logs it (implies --tls).",
        rich_help_panel=SECURITY,
    ),
]


def password(path: Path | None) -> str | None:
    """The room password from ``--password-file`` or CHATCTL_PASSWORD; a bad file is exit 2."""
    from chatctl.ui.access import PasswordFileError, read_password

    try:
        return read_password(path)
    except PasswordFileError as exc:
        from chatctl.ui.errors import print_error

        print_error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None


def room_option(text: str) -> str:
    """``--room ops`` or ``--room '#ops'``: the canonical room, or a usage error."""
    from chatctl.commands import room_arg
    from chatctl.protocol import ProtocolError

    try:
        return room_arg(text)
    except ProtocolError as exc:
        raise typer.BadParameter(exc.message, param_hint="--room") from None


def tls_options(tls: bool, ca: Path | None, fingerprint: str | None) -> TlsOptions | None:
    """What ``--tls``, ``--tls-ca`` and ``--fingerprint`` ask of the client; None: plain TCP."""
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


def servers(ctx: typer.Context, given: list[str] | None, host: str, port: int) -> list[Address]:
    """The servers to try, in order; a bad address is a usage error (exit 2).

    What is typed beats the environment: ``--server`` (not with ``--host``), else
    ``--host``, else ``CHATCTL_SERVERS``, else ``CHATCTL_HOST`` or the default host.
    ``--port`` (or ``CHATCTL_PORT``) is the port of every address given without one.
    """
    from chatctl.addresses import Address, parse_servers

    typed, host_typed = _typed(ctx, "server"), _typed(ctx, "host")
    if typed and host_typed:
        raise typer.BadParameter(
            "cannot go with --host: give that server as --server HOST:PORT too",
            param_hint="--server",
        )
    if not given or host_typed:
        return [Address(host, port)]
    hint = "--server" if typed else "CHATCTL_SERVERS"
    try:
        found = parse_servers(given, port)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    if not found:
        raise typer.BadParameter("no server given", param_hint=hint)
    return found


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given on the command line (not from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
