"""The Typer app: the root options and the commands, as Typer builds them.

Imported by ``chatctl.cli.main`` only once it knows it needs Typer: a completion
request that ``chatctl.cli.quickcomplete`` can answer never loads this module. The
command modules do without ``from __future__ import annotations``: Typer reads their
signatures at every start, and would evaluate string annotations again each time.
"""

from typing import Annotated

import typer

from chatctl import version_line
from chatctl.cli.bench import bench
from chatctl.cli.command import Command, Group
from chatctl.cli.export import export
from chatctl.cli.forget import forget
from chatctl.cli.history import history
from chatctl.cli.join import join
from chatctl.cli.oneshot import send, tail
from chatctl.cli.serve import serve
from chatctl.cli.status import status

app = typer.Typer(
    name="chatctl",
    cls=Group,
    help="Terminal group chat: start a server, join it, see who is there.",
    no_args_is_help=True,
    # Click's plain help and errors: Typer's Rich ones import rich.markdown and pygments,
    # more than half of what `--help` took (docs/design.md, start-up).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
for command in (serve, join, send, tail, export, status, history, forget, bench):
    app.command(cls=Command)(command)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Terminal group chat: start a server, join it, see who is there."""
