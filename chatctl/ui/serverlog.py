"""``chatctl serve``: the live connection log, and the loop that runs the server.

In a terminal: coloured, timestamped lines with a live footer (users online,
messages relayed) redrawn twice a second from the hub's counters, so nothing is
done per message. Elsewhere (a file, a pipe, journald): plain lines with a full
date and no escape codes. Message text is logged only with ``--verbose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import time
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from chatctl.exitcodes import ExitCode
from chatctl.server import (
    ChatServer,
    Closed,
    Hub,
    Listening,
    MessageRelayed,
    Refused,
    ServerConfig,
    ServerEvent,
    Stopping,
    UserJoined,
    UserLeft,
    raise_open_file_limit,
)
from chatctl.ui.errors import print_error

_CALM_REASONS = frozenset({"quit", "shutdown"})
#: File descriptors kept for the listening sockets, stdio, the event loop and logs.
_RESERVED_FILES = 32


def describe(event: ServerEvent) -> tuple[str, str]:
    """One log line (text, Rich style) for an event."""
    match event:
        case Listening(addresses=addresses):
            where = ", ".join(f"{h}:{p}" for h, p in addresses)
            if all(_is_loopback(h) for h, _ in addresses):
                return f"listening on {where} (this machine only)", "bold green"
            return f"listening on {where}: open to the network", "bold yellow"
        case UserJoined(name=name, address=address):
            return f"+ {name} joined from {address}", "green"
        case UserLeft(name=name, address=address, reason=reason):
            style = "dim" if reason in _CALM_REASONS else "yellow"
            return f"- {name} left ({reason}) from {address}", style
        case Refused(address=address, code=code):
            return f"refused {address}: {code}", "yellow"
        case Closed(address=address, reason=reason):
            return f"closed {address}: {reason}", "yellow"
        case MessageRelayed(name=name, text=text):
            return f"{name}: {text}".replace("\n", "\n    "), ""
        case Stopping(users=users):
            return f"shutting down, {users} user(s) notified", "bold yellow"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ServerLog:
    """The server's observer: turns events into log lines."""

    def __init__(self, out: TextIO, terminal: bool) -> None:
        self.out = out
        self.console = Console(file=out, highlight=False, soft_wrap=True) if terminal else None

    def __call__(self, event: ServerEvent) -> None:
        self.line(*describe(event))

    def line(self, text: str, style: str = "") -> None:
        now = time.time()
        if self.console is not None:
            stamp = Text(time.strftime("%H:%M:%S ", time.localtime(now)), style="dim")
            self.console.print(stamp.append(text, style=style))
        else:
            stamp_plain = time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(now))
            self.out.write(stamp_plain + text + "\n")
            self.out.flush()

    async def footer(self, hub: Hub) -> None:
        """Keep a status line under the log until cancelled (terminal only)."""
        if self.console is None:
            return
        with Live(console=self.console, auto_refresh=False, transient=True) as live:
            while True:
                live.update(_footer(hub), refresh=True)
                await asyncio.sleep(0.5)


def _footer(hub: Hub) -> Text:
    return Text.assemble(
        ("● ", "green"),
        (f"{len(hub.members)} online", "bold"),
        f" · {hub.messages_relayed} messages relayed · Ctrl-C to stop",
        style="reverse",
    )


def run_serve(config: ServerConfig) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code."""
    log = ServerLog(sys.stdout, terminal=sys.stdout.isatty())
    try:
        asyncio.run(_serve(config, log))
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        message = f"cannot listen on {config.host}:{config.port}: {reason}"
        print_error(message)
        if log.console is None:  # a log file should say why the server is not there
            log.line(message)
        return ExitCode.CANNOT_LISTEN
    return ExitCode.OK


async def _serve(config: ServerConfig, log: ServerLog) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    files = raise_open_file_limit()
    server = ChatServer(config, log)
    await server.start()
    capacity = min(config.max_clients, files - _RESERVED_FILES)
    note = "" if capacity >= config.max_clients else f", raise `ulimit -n` ({files}) for more"
    log.line(f"capacity: {capacity} clients (--max-clients {config.max_clients}{note})", "dim")
    footer = asyncio.create_task(log.footer(server.hub))
    try:
        await stop.wait()
    finally:
        footer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await footer
        await server.stop()
        log.line("stopped", "bold")
