"""``chatctl serve``: the live connection log, and the loop that runs the server.

In a terminal: coloured, timestamped lines with a live footer (users online,
messages relayed) redrawn twice a second from the hub's counters, so nothing is
done per message. Elsewhere (a file, a pipe, journald): plain lines with a full
date and no escape codes. Message text is logged only with ``--verbose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from chatctl import eventloop
from chatctl.exitcodes import ExitCode
from chatctl.limits import is_loopback
from chatctl.oslimits import raise_open_file_limit
from chatctl.server.backplane import BackplaneError
from chatctl.server.backplane.url import redacted
from chatctl.server.config import ServerConfig
from chatctl.server.events import (
    BackplaneDown,
    BackplaneGap,
    BackplaneUp,
    Closed,
    HistoryFailed,
    HistoryOpened,
    Listening,
    MessageRelayed,
    Moderated,
    OperatorsFailed,
    OperatorsLoaded,
    Refused,
    Renamed,
    RoomEntered,
    RoomParted,
    SearchFailed,
    ServerEvent,
    ServerGone,
    Stopping,
    UserJoined,
    UserLeft,
)
from chatctl.server.hub import Hub
from chatctl.server.listener import ChatServer
from chatctl.server.operators import OperatorsError
from chatctl.server.store import HistoryError
from chatctl.tls import TlsSetupError, certificate_fingerprint, self_signed, server_context
from chatctl.ui.errors import print_error
from chatctl.ui.units import count

if TYPE_CHECKING:  # prometheus_client is imported with --metrics only
    from chatctl.server.metrics import MetricsServer

_CALM_REASONS = frozenset({"quit", "shutdown", "replaced"})
#: File descriptors kept for the listening sockets, stdio, the event loop and logs.
_RESERVED_FILES = 32


def describe(event: ServerEvent) -> tuple[str, str]:
    """One log line (text, Rich style) for an event."""
    match event:
        case Listening(addresses=addresses, irc=irc):
            where = ", ".join(f"{h}:{p}" for h, p in addresses)
            if irc:
                where += ", IRC on " + ", ".join(f"{h}:{p}" for h, p in irc)
            if all(is_loopback(h) for h, _ in addresses + irc):
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
            hint = _CLOSED_HINTS.get(reason)
            return f"closed {address}: {reason}" + (f" ({hint})" if hint else ""), "yellow"
        case MessageRelayed(name=name, text=text, room=room, action=action):
            said = f"* {name} {text}" if action else f"{name}: {text}"
            return f"{room} {said}".replace("\n", "\n    "), ""
        case RoomEntered(name=name, room=room, created=created):
            return f"  {name} joined {room}" + (" (new room)" if created else ""), "dim"
        case RoomParted(name=name, room=room):
            return f"  {name} left {room}", "dim"
        case Renamed(old=old, new=new):
            return f"  {old} is now {new}", "dim"
        case Stopping(users=users):
            return f"shutting down, {count(users, 'user')} notified", "bold yellow"
        case HistoryOpened(path=path, messages=messages):
            return f"history in {path} ({messages} messages)", "dim"
        case HistoryFailed(message=message):
            return f"history stopped: {message}; going on without history", "bold red"
        case SearchFailed(message=message):
            return f"search stopped: {message}; history goes on", "bold red"
        case Moderated(room=room, by=by, text=text):
            return f"{room} {by} {text}", "bold magenta"
        case OperatorsLoaded(names=names):
            return f"server operators: {', '.join(names) or 'none'}", "dim"
        case OperatorsFailed(message=message):
            return f"operators unchanged: {message}", "bold red"
        case BackplaneUp(url=url):
            return f"backplane {redacted(url)}: reading the cluster's stream", "bold green"
        case BackplaneDown(url=url, why=why):
            return f"backplane {redacted(url)} lost ({why}): holding messages", "bold red"
        case BackplaneGap(why=why):
            return f"backplane: {why}", "bold red"
        case ServerGone(server=server, users=users):
            return f"server {server} stopped: its {count(users, 'user')} left", "yellow"


_CLOSED_HINTS = {
    "not_tls": "it spoke plain TCP to this TLS port: the client needs --tls",
    "tls_handshake_timeout": "no TLS handshake in time",
    "tls_abandoned": "it hung up during the TLS handshake, e.g. not trusting the certificate yet",
    "tls_untrusted": "the client does not trust this certificate",
    "tls_error": "the TLS handshake failed",
}


def exposure_warning(addresses: list[tuple[str, int]], tls: bool, password: bool) -> str | None:
    """The loud warning for a server open beyond this machine with neither TLS nor a password."""
    if tls or password or all(is_loopback(h) for h, _ in addresses):
        return None
    return (
        "WARNING: listening beyond this machine with neither TLS nor a password: anyone "
        "who can reach this port can read the conversation and join it. "
        "Use --tls and --password-file (README: Sharing on a LAN safely)."
    )


class ServerLog:
    """The server's observer: turns events into log lines."""

    def __init__(self, out: TextIO, terminal: bool) -> None:
        self.out = out
        self.console = Console(file=out, highlight=False, soft_wrap=True) if terminal else None

    def __call__(self, event: ServerEvent) -> None:
        self.line(*describe(event))

    def line(
        self,
        text: str,
        style: str = "",
        event: str = "note",
        level: str | None = None,
        **fields: object,
    ) -> None:
        """One line of the log. ``event`` (a stable name), ``level`` (when not the style's)
        and ``fields`` (its parts) are for ``--log-format json`` (``chatctl.ui.jsonlog``)."""
        now = time.time()
        try:
            if self.console is not None:
                # Two spans: a Text with a dim base style would dim all that is appended.
                stamp = time.strftime("%H:%M:%S ", time.localtime(now))
                self.console.print(Text.assemble((stamp, "dim"), (text, style)))
            else:
                stamp_plain = time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(now))
                self.out.write(stamp_plain + text + "\n")
                self.out.flush()
        except OSError:
            self.lost()

    def lost(self) -> None:
        """The log's reader went away (a closed pipe, a supervisor killed): the chat goes
        on, the log into /dev/null (an exception here would stop the server half-way, and
        a worker's supervisor is not there to end it)."""
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.out.fileno())
            os.close(null)

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
        f" · {count(hub.messages_relayed, 'message')} relayed · Ctrl-C to stop",
        style="reverse",
    )


@dataclass(frozen=True)
class TlsSetup:
    """``serve --tls``: a certificate and key given, or (both None) the self-signed one."""

    cert: Path | None = None
    key: Path | None = None

    def context(self, log: ServerLog) -> ssl.SSLContext:
        """The server's SSL context; logs the fingerprint (never any key material)."""
        if self.cert is None:
            cert, key, created = self_signed()
            folder = str(cert.parent)
            if created:
                text = f"TLS: made a self-signed certificate, kept in {folder}"
            else:
                text = f"TLS: self-signed certificate from {folder}"
            log.line(text, "dim", "tls_certificate", created=created, folder=folder)
        else:
            cert, key = self.cert, self.key or self.cert
        context = server_context(cert, key)
        fingerprint = certificate_fingerprint(cert)
        log.line(
            f"TLS fingerprint {fingerprint}",
            "bold green",
            "tls_fingerprint",
            fingerprint=fingerprint,
        )
        return context


class CannotStart(Exception):
    """``serve`` cannot start, for a reason its message says in one line (exit 9)."""


def run_serve(
    config: ServerConfig, tls: TlsSetup | None = None, log: ServerLog | None = None
) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code. ``log``: the text log (coloured
    in a terminal) unless given another (``JsonLog``)."""
    if log is None:
        log = ServerLog(sys.stdout, terminal=sys.stdout.isatty())
    try:
        context = tls.context(log) if tls is not None else None
    except TlsSetupError as exc:
        print_error(str(exc))
        if log.console is None:
            log.line(str(exc), "bold red", "cannot_start")
        return ExitCode.CANNOT_START
    try:
        eventloop.run(_serve(config, log, context))
    except (HistoryError, OperatorsError, CannotStart, BackplaneError) as exc:
        print_error(str(exc))
        if log.console is None:
            log.line(str(exc), "bold red", "cannot_start")
        return ExitCode.CANNOT_START
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        where = exc.filename or f"{config.host}:{config.port}"
        message = f"cannot listen on {where}: {reason}"
        print_error(message)
        if log.console is None:  # a log file should say why the server is not there
            log.line(message, "bold red", "cannot_start")
        return ExitCode.CANNOT_START
    return ExitCode.OK


async def _serve(config: ServerConfig, log: ServerLog, tls: ssl.SSLContext | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    files = raise_open_file_limit()
    server = ChatServer(config, log, tls=tls)
    # Before start, which logs the operators: a SIGHUP sent once that line is seen must
    # find its handler (the default would end the server).
    loop.add_signal_handler(signal.SIGHUP, server.hub.reload_operators)
    metrics = _open_metrics(config, server.hub)  # before start: a busy port costs nothing
    try:
        await server.start()
    except BaseException:
        if metrics is not None:
            metrics.close()
        raise
    exposed = server.addresses + server.irc_addresses
    warning = exposure_warning(exposed, tls is not None, config.password is not None)
    if warning is not None:
        log.line(warning, "bold red", "exposed", "warning")
    if config.password is not None:
        log.line("a password is required to join or ask for status", "dim", "password_required")
    if config.allow or config.deny:
        rules = [f"allow {n}" for n in config.allow] + [f"deny {n}" for n in config.deny]
        text = "access list: " + ", ".join(rules) + " (deny wins)"
        log.line(text, "dim", "access_list", allow=list(config.allow), deny=list(config.deny))
    if config.history is None:
        log.line("no history kept (--history PATH keeps it)", "dim", "no_history")
    capacity = min(config.max_clients, files - _RESERVED_FILES)
    note = "" if capacity >= config.max_clients else f", raise `ulimit -n` ({files}) for more"
    log.line(
        f"capacity: {capacity} clients (--max-clients {config.max_clients}{note})",
        "dim",
        "capacity",
        clients=capacity,
        max_clients=config.max_clients,
        open_files=files,
    )
    name = eventloop.running_loop_name()
    log.line(f"event loop: {name}", "dim", "event_loop", loop=name)
    if metrics is not None:
        metrics.collector.server = ", ".join(f"{h}:{p}" for h, p in server.addresses)
        log.line(f"metrics on {metrics.url}", "dim", "metrics", url=metrics.url)
    footer = asyncio.create_task(log.footer(server.hub))
    try:
        await stop.wait()
    finally:
        footer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await footer
        await server.stop()
        if metrics is not None:
            await asyncio.to_thread(metrics.close)
        log.line("stopped", "bold", "stopped")


def _open_metrics(config: ServerConfig, hub: Hub) -> MetricsServer | None:
    """``--metrics``: its HTTP server, listening (CannotStart if it cannot); prometheus_client
    is imported only then."""
    if config.metrics_port is None:
        return None
    from chatctl.server.metrics import MetricsServer

    try:
        return MetricsServer(hub, config.metrics_host, config.metrics_port)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        where = f"{config.metrics_host}:{config.metrics_port}"
        raise CannotStart(f"cannot listen on {where} for --metrics: {reason}") from None
