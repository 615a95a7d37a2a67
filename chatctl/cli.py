"""The ``chatctl`` command: thin Typer glue over the cores and the terminal UI.

Each command imports its UI module only when it runs, so ``chatctl status``
and shell completion do not pay for prompt_toolkit.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer

from chatctl import __version__
from chatctl.exitcodes import ExitCode

app = typer.Typer(
    name="chatctl",
    help="Terminal group chat: start a server, join it, see who is there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000

Host = Annotated[
    str,
    typer.Option("--host", envvar="CHATCTL_HOST", help="Server address.", show_default=True),
]
Port = Annotated[
    int,
    typer.Option(
        "--port", envvar="CHATCTL_PORT", min=0, max=65535, help="TCP port.", show_default=True
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chatctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Terminal group chat: start a server, join it, see who is there."""


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="CHATCTL_HOST",
            help="Address to listen on; 0.0.0.0 opens the server to the LAN.",
        ),
    ] = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log the text of every message.")
    ] = False,
) -> None:
    """Run a chat server and show its live connection log (Ctrl-C stops it)."""
    from chatctl.server import ServerConfig
    from chatctl.ui.serverlog import run_serve

    raise typer.Exit(run_serve(ServerConfig(host=host, port=port, report_messages=verbose)))


@app.command()
def join(
    name: Annotated[
        str, typer.Argument(help="Your name: 1-32 of A-Z a-z 0-9 _ - . (unique, any case).")
    ],
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
) -> None:
    """Join the chat as NAME. Piped stdin: each line is a message."""
    from chatctl.ui.chat import run_join

    raise typer.Exit(run_join(host, port, name))


@app.command()
def status(
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show who is connected and the server's counters, without joining."""
    from chatctl.ui.status import run_status

    raise typer.Exit(run_status(host, port, as_json))


def main() -> None:
    """Entry point: no traceback reaches a user unless CHATCTL_DEBUG is set."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.OK)
    except Exception as exc:
        if os.environ.get("CHATCTL_DEBUG"):
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"chatctl: internal error: {type(exc).__name__}: {exc}\n"
                "Run again with CHATCTL_DEBUG=1 to see the traceback, and please report it.\n"
            )
        sys.exit(ExitCode.INTERNAL)
