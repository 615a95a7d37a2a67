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
