"""The ``chatctl`` command: thin Typer glue over the cores and the terminal UI.

One module a command (``serve``, ``join``, ``status``, ``bench``), the options they
share in ``options``, and in ``command`` the Click classes that make help readable and
start-up fast (``coercion``).

Importing this package loads Typer and light modules only (no asyncio, ssl, Rich,
prompt_toolkit or cores): each command imports what it runs inside its body, so
``--help``, ``--version`` and each Tab of shell completion do not pay for the server or
the client (``benchmarks/startup.py`` measures it). The command modules do without
``from __future__ import annotations``: Typer reads their signatures at every start, and
would evaluate string annotations again each time (~10 ms of a Tab).
"""

import os
import sys
from typing import Annotated

import typer

from chatctl import __version__
from chatctl.cli.bench import bench
from chatctl.cli.command import Command, Group
from chatctl.cli.join import join
from chatctl.cli.serve import serve
from chatctl.cli.status import status
from chatctl.exitcodes import ExitCode

app = typer.Typer(
    name="chatctl",
    cls=Group,
    help="Terminal group chat: start a server, join it, see who is there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for command in (serve, join, status, bench):
    app.command(cls=Command)(command)


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


def main() -> None:
    """Entry point: no traceback reaches a user unless CHATCTL_DEBUG is set."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.OK)
    except Exception as exc:
        # Only a command that ran can raise it, so its module is loaded by now.
        from chatctl.eventloop import LoopChoiceError

        if isinstance(exc, LoopChoiceError):  # CHATCTL_LOOP is set wrong: like a bad option
            from chatctl.ui.errors import print_error

            print_error(str(exc))
            sys.exit(ExitCode.USAGE)
        if os.environ.get("CHATCTL_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            sys.stderr.write(
                f"chatctl: internal error: {type(exc).__name__}: {exc}\n"
                "Run again with CHATCTL_DEBUG=1 to see the traceback, and please report it.\n"
            )
        sys.exit(ExitCode.INTERNAL)
