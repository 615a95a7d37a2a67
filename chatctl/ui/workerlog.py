"""``serve --workers N``: the supervisor's log, with every worker's lines in it.

Workers log JSON to the supervisor (``chatctl.server.workers``). Here each record goes
into the supervisor's own log: in text, ``[w2] `` and the worker's line, coloured by its
level in a terminal (no footer: the counts are the workers'); in JSON, the worker's own
record with a ``worker`` key, its ``ts`` kept.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from chatctl.exitcodes import ExitCode
from chatctl.server.workers import Relay, Supervisor, worker_command
from chatctl.tls import TlsSetupError, self_signed
from chatctl.ui.errors import print_error
from chatctl.ui.jsonlog import JsonLog, timestamp
from chatctl.ui.serverlog import ServerLog, TlsSetup

_STYLES = {"error": "bold red", "warning": "yellow"}
_KEYS = ("ts", "level", "event", "message")


def run_workers(
    argv: Sequence[str], count: int, tls: TlsSetup | None = None, log: ServerLog | None = None
) -> int:
    """Supervise ``count`` workers running ``chatctl`` with ``argv`` until SIGINT or SIGTERM;
    the exit code. ``log``: the text log (coloured in a terminal) unless given another."""
    if log is None:
        log = ServerLog(sys.stdout, terminal=sys.stdout.isatty())
    if tls is not None and tls.cert is None:
        try:
            cert, _key, created = self_signed()  # here, once: N workers would race to make it
        except TlsSetupError as exc:
            print_error(str(exc))
            return ExitCode.CANNOT_START
        if created:
            folder = str(cert.parent)
            text = f"TLS: made a self-signed certificate, kept in {folder}"
            log.line(text, "dim", "tls_certificate", created=True, folder=folder)
    supervisor = Supervisor(lambda n: worker_command(argv, n), count, log, relay(log))
    return asyncio.run(supervisor.run())


def relay(log: ServerLog) -> Relay:
    """How a worker's record is written to ``log``."""
    if isinstance(log, JsonLog):
        json_log = log

        def as_json(worker: int, record: dict[str, Any]) -> None:
            fields = {"ts": record.get("ts") or timestamp(time.time()), "worker": worker}
            fields.update((k, v) for k, v in record.items() if k not in _KEYS)
            json_log.write(
                str(record.get("event", "note")),
                str(record.get("level", "info")),
                str(record.get("message", "")),
                fields,
            )

        return as_json

    def as_text(worker: int, record: dict[str, Any]) -> None:
        level = str(record.get("level", "info"))
        log.line(f"[w{worker}] {record.get('message', '')}", _STYLES.get(level, ""))

    return as_text
