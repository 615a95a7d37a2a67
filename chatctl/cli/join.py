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
    Servers,
    TlsCa,
    UseTls,
    password,
    room_option,
    servers,
    tls_options,
)
from chatctl.wirelimits import INTERACTIVE_HISTORY, MAX_HISTORY


def join(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Your name: 1-32 of A-Z a-z 0-9 _ - . (unique, any case)."
        ),
    ],
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    server: Servers = None,
    room: Annotated[
        list[str] | None,
        typer.Option(
            "--room",
            "-r",
            metavar="ROOM",
            help="A room to be in (repeatable; '#' optional); you type into the first. "
            "Default: lobby.",
        ),
    ] = None,
    commands: Annotated[
        bool,
        typer.Option(
            "--commands",
            help="Piped: lines starting with / are commands (/join, /msg, ...), as typed "
            "at the prompt; without it every line is text.",
        ),
    ] = False,
    history: Annotated[
        int | None,
        typer.Option(
            "--history",
            min=0,
            max=MAX_HISTORY,
            metavar="N",
            help="Show up to N past messages of each room entered, if the server keeps "
            f"them. Default: {INTERACTIVE_HISTORY} at a terminal, 0 piped.",
            show_default=False,
        ),
    ] = None,
    no_bell: Annotated[
        bool, typer.Option("--no-bell", help="No terminal bell on a mention or private message.")
    ] = False,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Watch only, as a projector screen: no input line, spaced lines, cannot send.",
        ),
    ] = False,
    tls: UseTls = False,
    tls_ca: TlsCa = None,
    fingerprint: Fingerprint = None,
    password_file: PasswordFile = None,
) -> None:
    """Join the chat as NAME. Piped stdin: each line is a message (--commands: or a command)."""
    from chatctl.ui.chat import JoinOptions, run_join

    where = servers(ctx, server, host, port)
    rooms = [room_option(r) for r in room] if room else None
    options = JoinOptions(
        rooms=rooms,
        tls=tls_options(tls, tls_ca, fingerprint),
        password=password(password_file),
        commands=commands,
        bell=not no_bell,
        history=history,
        read_only=read_only,
    )
    raise typer.Exit(run_join(where, name, options))
