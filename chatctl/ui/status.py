"""``chatctl status`` and ``chatctl history``: the server's facts and its users, or its
history alone, as text or as JSON."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import msgspec
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from chatctl import eventloop
from chatctl.addresses import Address
from chatctl.client import ClientError, TlsOptions, fetch_status, first_answer
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import ClusterInfo, HistoryInfo, RoomStatus, StatusReply
from chatctl.ui.access import AskUser, run_asking, worth_asking
from chatctl.ui.errors import print_error, print_skipped
from chatctl.ui.units import count, size

#: Users the table shows unless ``--all``: a room of 15 000 takes Rich 5 s to lay out,
#: and nobody reads that many rows (``--json`` always has everyone).
TABLE_ROWS = 100


def run_status(
    servers: Sequence[Address],
    as_json: bool,
    tls: TlsOptions | None = None,
    password: str | None = None,
    show_all: bool = False,
) -> int:
    """Print the status; in a terminal, ask about an unknown TLS server or a password."""

    def show(reply: StatusReply) -> int:
        if as_json:
            sys.stdout.write(to_json(reply) + "\n")
        else:
            _console().print(status_table(reply, None if show_all else TABLE_ROWS))
        return ExitCode.OK

    return _asking(servers, tls, password, show)


def run_history(
    servers: Sequence[Address],
    as_json: bool,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> int:
    """``chatctl history``: the status's history part (``--json``: its object, or null);
    exit 15 if the server keeps none."""

    def show(reply: StatusReply) -> int:
        history = reply.server.history
        if as_json:
            sys.stdout.write(msgspec.json.encode(history).decode() + "\n")
        else:
            _console().print(history_line(history))
            if history is not None and history.path is not None:
                _console().print(Text("file: ", style="bold").append(history.path))
        return ExitCode.OK if history is not None else ExitCode.NO_HISTORY

    return _asking(servers, tls, password, show)


def _asking(
    servers: Sequence[Address],
    tls: TlsOptions | None,
    password: str | None,
    show: Callable[[StatusReply], int],
) -> int:
    """Fetch the status of the first of ``servers`` that answers and ``show`` it (its
    exit code); in a terminal, ask what can be."""
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()

    def run(tls: TlsOptions | None, password: str | None) -> int:
        tried: list[Address] = []

        async def fetch(server: Address) -> StatusReply:
            tried.append(server)
            return await fetch_status(
                server.host, server.port, timeout=5.0, tls=tls, password=password
            )

        try:
            _, reply = eventloop.run(first_answer(servers, fetch, print_skipped))
        except ClientError as exc:
            if worth_asking(exc, interactive, password):
                raise AskUser(exc, str(tried[-1])) from None
            print_error(str(exc))
            return exit_code_for(exc)
        return show(reply)

    return run_asking(run, tls, password, str(servers[0]))


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def to_json(reply: StatusReply) -> str:
    """``{"server": {...}, "users": [{"name": ...}, ...]}``: the reply without its tag."""
    data = msgspec.to_builtins(reply)
    data.pop("type", None)
    return msgspec.json.encode(data).decode()


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _rooms_cell(rooms: list[str], away: str | None, protocol: int, irc: bool) -> Text:
    cell = Text(", ".join(rooms) or "-")
    if away is not None:
        cell.append(f" (away: {away})", style="dim")
    if protocol == 1:
        cell.append(" (v1)", style="dim")
    if irc:
        cell.append(" (IRC)", style="dim")
    return cell


def _rooms_line(rooms: list[RoomStatus]) -> Text:
    """``rooms: #lobby 3 people, 12 messages · #ops 2 people, 40 messages``"""
    line = Text("rooms: ", style="bold")
    for n, room in enumerate(rooms):
        if n:
            line.append(" · ")
        line.append(room.name, style="bold")
        line.append(f" {room.members} in, {count(room.messages, 'message')}")
        if room.topic:
            line.append(f" ({room.topic})", style="dim")
        if room.moderated:
            line.append(" moderated", style="bold yellow")
        if room.operators:
            line.append(f" @{' @'.join(room.operators)}", style="dim")
        if room.muted:
            line.append(f" muted: {', '.join(room.muted)}", style="yellow")
    return line


def _cluster_line(cluster: ClusterInfo) -> Text:
    """``cluster: this is host:5001 of 2 servers (host:5001, host:5002); backplane up``"""
    line = Text("cluster: ", style="bold")
    line.append(f"this is {cluster.name} of {count(len(cluster.servers), 'server')}")
    line.append(f" ({', '.join(cluster.servers)})", style="dim")
    if cluster.up:
        line.append("; backplane up", style="green")
    else:
        line.append("; backplane (Redis) unreachable: messages held", style="bold red")
    if cluster.reconnects:
        line.append(f", reconnected {count(cluster.reconnects, 'time')}", style="dim")
    return line


def history_line(history: HistoryInfo | None) -> Text:
    """``history: 1 204 messages, 3.4 MiB, since 2026-11-02 09:14`` (or why there is none)."""
    line = Text("history: ", style="bold")
    if history is None:
        return line.append("none kept (the server runs with --no-history)", style="dim")
    line.append(f"{count(history.messages, 'message')}, {size(history.bytes)}")
    if history.oldest is not None:
        line.append(time.strftime(", since %Y-%m-%d %H:%M", time.localtime(history.oldest)))
    if history.error is not None:
        line.append(f"; stopped: {history.error}", style="bold red")
    return line


def status_table(reply: StatusReply, rows: int | None = None) -> Group:
    """The server facts on one line (wrapped by the terminal, not squeezed), then the users
    (the first ``rows`` of them, in the order they joined, if given)."""
    s = reply.server
    caption = (
        f"chatctl {s.version} · protocol {s.protocol} · up {duration(s.uptime_seconds)} · "
        f"{count(s.users, 'user')} · {count(s.messages_relayed, 'message')} relayed"
    )
    if s.leave_reasons:
        caption += " · left: " + ", ".join(f"{k} {v}" for k, v in sorted(s.leave_reasons.items()))
    table = Table(expand=False)
    cluster = s.cluster is not None
    if cluster:
        table.add_column("server", justify="left")
    for header, justify in (
        ("name", "left"),
        ("address", "left"),
        ("connected since", "left"),
        ("idle", "right"),
        ("messages", "right"),
        ("queued", "right"),
        ("rooms", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    shown = reply.users if rows is None else reply.users[:rows]
    for u in shown:
        # Cells are Text, never str: a str cell would be parsed as Rich markup.
        elsewhere = not u.address  # on another server of the cluster: not known here
        row = [
            Text(u.name, style="bold"),
            Text(u.address),
            Text(
                ""
                if elsewhere
                else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(u.connected_at))
            ),
            Text("" if elsewhere else duration(u.idle_seconds)),
            Text("" if elsewhere else str(u.messages_sent)),
            Text("" if elsewhere else size(u.bytes_queued)),
            _rooms_cell(u.rooms, u.away, u.protocol, u.irc),
        ]
        if cluster:
            row.insert(0, Text(u.server or ""))
        table.add_row(*row)
    parts: list[Text | Table] = [Text(caption, style="bold")]
    if s.rooms:
        parts.append(_rooms_line(s.rooms))
    parts.append(history_line(s.history))
    if s.cluster is not None:
        parts.append(_cluster_line(s.cluster))
    parts.append(table if reply.users else Text("nobody is connected", style="dim"))
    if len(shown) < len(reply.users):
        more = len(reply.users) - len(shown)
        parts.append(Text(f"and {more} more: --all lists everyone, --json too", style="dim"))
    return Group(*parts)
