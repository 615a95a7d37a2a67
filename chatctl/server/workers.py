"""``serve --workers N``: N server processes on one port, supervised by ``chatctl serve``.

One Python process uses one core. N workers, each a whole ``chatctl serve`` listening on
the same port (``SO_REUSEPORT``: the kernel spreads new connections among them) and
sharing rooms, names and history through the backplane (without it each would be a
separate chat), use N. The supervisor is the ``chatctl serve`` process itself: it starts
the workers with its own command line plus the hidden ``--worker K``, writes their log
lines into its own, forwards SIGINT, SIGTERM and SIGHUP, and restarts a worker that dies,
waiting longer after each quick death so that a crash loop does not spin. A worker that
fails before all of them are listening stops them all: that is a set-up error (Redis
unreachable, port taken), which the others would hit too.

Workers log JSON to the supervisor whatever ``--log-format`` says, so that it reads
events, not English: a worker's ``listening`` tells it that worker is up. How a record
is written out is the caller's (``chatctl.ui.workerlog``): no terminal code here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from chatctl.exitcodes import ExitCode
from chatctl.limits import is_loopback
from chatctl.server.config import ServerConfig

#: A worker that dies is restarted after FIRST_DELAY seconds, twice that after another
#: quick death, and so on up to MAX_DELAY; one that lived STABLE_SECONDS starts over.
FIRST_DELAY = 0.5
MAX_DELAY = 10.0
STABLE_SECONDS = 30.0
#: Seconds the workers get to stop once told to (they tell their clients first).
STOP_SECONDS = 10.0
#: Longest log line read from a worker: a ``--verbose`` message is at most a frame.
LINE_LIMIT = 4 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


class Log(Protocol):
    """The supervisor's own lines: ``chatctl.ui.serverlog.ServerLog.line``."""

    def line(
        self,
        text: str,
        style: str = "",
        event: str = "note",
        level: str | None = None,
        **fields: object,
    ) -> None: ...


#: Writes one record of worker K's JSON log (a dict) to the supervisor's log.
Relay = Callable[[int, dict[str, Any]], None]


def worker_command(argv: Sequence[str], number: int) -> list[str]:
    """Worker ``number``'s command: this command line (``serve ...``), as a JSON-logging worker."""
    worker = ("--worker", str(number), "--log-format", "json")  # the last --log-format wins
    return [sys.executable, "-m", "chatctl", *argv, *worker]


def as_worker(config: ServerConfig, number: int) -> ServerConfig:
    """Worker ``number``'s config: the port shared, a history file and a metrics port of
    its own (SQLite takes one writer per file; one HTTP server per port)."""
    metrics = config.metrics_port
    return dataclasses.replace(
        config,
        reuse_port=True,
        worker=number,
        history=worker_history(config.history, number) if config.history else None,
        metrics_port=metrics + number - 1 if metrics else metrics,
    )


def worker_history(path: str, number: int) -> str:
    """Worker 1 keeps ``PATH``, so what a single server kept carries over to it; worker K
    writes ``history-5000.wK.sqlite3`` beside it (each is fed the whole stream)."""
    if number == 1:
        return path
    file = Path(path)
    return str(file.with_name(f"{file.stem}.w{number}{file.suffix}"))


@dataclasses.dataclass(eq=False)
class _Worker:
    number: int
    proc: asyncio.subprocess.Process | None = None
    #: Said ``listening`` since it was last started.
    listening: bool = False
    started: float = 0.0
    delay: float = FIRST_DELAY

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    """Keeps ``count`` workers running until SIGINT or SIGTERM (``run``)."""

    def __init__(
        self,
        command: Callable[[int], list[str]],
        count: int,
        log: Log,
        relay: Relay,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        self.command = command
        self.workers = [_Worker(n) for n in range(1, count + 1)]
        self.log = log
        self.relay = relay
        self.stop_seconds = stop_seconds
        #: Every worker has said ``listening`` once: the start is over.
        self.up = False
        #: The exit code when a worker could not start (None: none failed).
        self.failed: int | None = None
        self._stop = asyncio.Event()

    async def run(self) -> int:
        """Start the workers, keep them, stop them; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        keepers = [asyncio.create_task(self._keep(w)) for w in self.workers]
        try:
            await self._stop.wait()
        finally:
            await self._stop_all(keepers)
        return self.failed or ExitCode.OK

    async def _keep(self, worker: _Worker) -> None:
        """Run ``worker``, again each time it dies, until the supervisor stops."""
        while not self._stop.is_set():
            code = await self._run_once(worker)
            if self._stop.is_set() or code is None:
                return
            pid = worker.proc.pid if worker.proc is not None else 0
            how = f"signal {-code}" if code < 0 else f"exit {code}"
            named = f"worker {worker.number} (pid {pid})"
            if not self.up and not worker.listening:
                self.log.line(
                    f"{named} could not start: {how}; stopping",
                    "bold red",
                    "worker_failed",
                    worker=worker.number,
                    pid=pid,
                    status=how,
                )
                self.failed = code if code > 0 else ExitCode.CANNOT_START
                self._stop.set()
                return
            if time.monotonic() - worker.started >= STABLE_SECONDS:
                worker.delay = FIRST_DELAY
            self.log.line(
                f"{named} died: {how}; restarting in {worker.delay:g} s",
                "bold red",
                "worker_died",
                worker=worker.number,
                pid=pid,
                status=how,
                delay=worker.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), worker.delay)
            worker.delay = min(worker.delay * 2, MAX_DELAY)

    async def _run_once(self, worker: _Worker) -> int | None:
        """Start ``worker`` and relay its output until it ends; its exit status (negative:
        the signal), or None if it could not be started at all."""
        worker.listening = False
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(worker.number),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
                preexec_fn=_die_with(os.getpid()),
            )
        except OSError as exc:
            self.log.line(f"cannot start worker {worker.number}: {exc}", "bold red", "cannot_start")
            self.failed = ExitCode.CANNOT_START
            self._stop.set()
            return None
        worker.proc, worker.started = proc, time.monotonic()
        if self._stop.is_set():  # told to stop while it was being started
            proc.terminate()
        self.log.line(
            f"worker {worker.number} started (pid {proc.pid})",
            "dim",
            "worker_started",
            worker=worker.number,
            pid=proc.pid,
        )
        out, err = proc.stdout, proc.stderr
        assert out is not None  # noqa: S101  PIPE
        assert err is not None  # noqa: S101  PIPE
        await asyncio.gather(self._read(worker, out), _copy(worker, err))
        return await proc.wait()

    async def _read(self, worker: _Worker, stream: asyncio.StreamReader) -> None:
        """The worker's JSON log, record by record, into the supervisor's."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over LINE_LIMIT: dropped, the next one is read
                continue
            if not raw:
                return
            record = _record(raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.relay(worker.number, record)
            if record.get("event") == "listening":
                worker.listening = True
                self._listening(record)

    def _listening(self, record: dict[str, Any]) -> None:
        """Once every worker is listening, the one line that says the server is up."""
        if self.up or not all(w.listening for w in self.workers):
            return
        self.up = True
        addresses, irc = _addresses(record, "addresses"), _addresses(record, "irc")
        where = ", ".join(f"{h}:{p}" for h, p in addresses)
        if irc:
            where += ", IRC on " + ", ".join(f"{h}:{p}" for h, p in irc)
        text = f"listening on {where} with {len(self.workers)} workers"
        local = all(is_loopback(h) for h, _ in addresses + irc)
        self.log.line(
            text + (" (this machine only)" if local else ": open to the network"),
            "bold green" if local else "bold yellow",
            "workers_listening",
            workers=len(self.workers),
            addresses=record.get("addresses", []),
            irc=record.get("irc", []),
        )

    def _reload(self) -> None:
        """SIGHUP: to every worker that is listening (one still starting reads the file)."""
        told = [w for w in self.workers if w.alive and w.listening]
        for worker in told:
            _signal(worker, signal.SIGHUP)
        self.log.line(f"SIGHUP: passed to {len(told)} workers", "dim", "workers_reload")

    async def _stop_all(self, keepers: list[asyncio.Task[None]]) -> None:
        """SIGTERM to every worker; SIGKILL to those still there after ``stop_seconds``."""
        self._stop.set()
        alive = [w for w in self.workers if w.alive]
        if alive and self.failed is None:
            self.log.line(f"stopping {len(alive)} workers", "bold yellow", "workers_stopping")
        for worker in alive:
            _signal(worker, signal.SIGTERM)
        _done, pending = await asyncio.wait(keepers, timeout=self.stop_seconds)
        for worker in self.workers:
            if worker.alive and worker.proc is not None:
                self.log.line(
                    f"worker {worker.number} (pid {worker.proc.pid}) did not stop within "
                    f"{self.stop_seconds:g} s: killed",
                    "bold red",
                    "worker_killed",
                    worker=worker.number,
                    pid=worker.proc.pid,
                )
                _signal(worker, signal.SIGKILL)
        if pending:
            await asyncio.wait(pending)
        self.log.line("stopped", "bold", "stopped")


async def _copy(worker: _Worker, stream: asyncio.StreamReader) -> None:
    """The worker's stderr (a failure's one line, a traceback) to ours, marked as its."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:
            continue
        if not raw:
            return
        sys.stderr.write(f"[w{worker.number}] {raw.decode('utf-8', 'replace').rstrip()}\n")
        sys.stderr.flush()


def _record(line: str) -> dict[str, Any]:
    """A line of a worker's JSON log; anything else (a worker never writes it) as a note."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict):
        return record
    return {"level": "info", "event": "note", "message": line}


def _addresses(record: dict[str, Any], key: str) -> list[tuple[str, int]]:
    found = record.get(key)
    if not isinstance(found, list):
        return []
    return [(str(a.get("host")), int(a.get("port", 0))) for a in found if isinstance(a, dict)]


def _signal(worker: _Worker, sig: int) -> None:
    if worker.proc is not None:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.send_signal(sig)


def _die_with(parent: int) -> Callable[[], None] | None:
    """For the child, before it runs: SIGTERM when the supervisor dies, even by SIGKILL
    (Linux), so that no worker outlives it. Looked up here, so the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_up() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before that: too late to be told
            os.kill(os.getpid(), signal.SIGTERM)

    return set_up
