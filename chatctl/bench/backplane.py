"""The Redis a cluster run shares: a ``redis-server`` bench starts on a free loopback port,
in a temporary folder of its own, and stops (and removes) afterwards.

Speed runs keep nothing (``--save ""``, ``--appendonly no``): the backplane's cost without
the disk. ``aof`` turns on the append-only file (``appendfsync everysec``, as
docs/scaling.md tells operators to run it), which a restart reads back: the fault run
(benchmarks/cluster_faults.py) restarts it on the same port and folder.

Its CPU is read as the servers' is, from ``/proc/<pid>/stat`` (``system._proc_cpu``):
every thread of the process, the main one and the background ones (``bio``, the AOF's
fsync) together. ``info_cpu`` gives Redis's own account (``INFO cpu``) to compare.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from chatctl.bench.config import BenchError


def redis_server() -> str:
    """The ``redis-server`` executable, or BenchError naming the package."""
    found = shutil.which("redis-server")
    if found is None:
        raise BenchError(
            "bench --cluster/--backplane needs redis-server on PATH, and there is none "
            "(Debian: apt-get install redis-server)"
        )
    if importlib.util.find_spec("redis") is None:
        raise BenchError(
            "--cluster and --backplane need the redis client library in this Python "
            "(pip install 'chatctl[redis]'): chatctl serve --backplane uses it"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SpawnedRedis:
    """``redis-server`` on loopback; ``url`` is what ``serve --backplane`` is given."""

    def __init__(self, aof: bool = False, folder: Path | None = None) -> None:
        self.executable = redis_server()
        self.aof = aof
        self.own_folder = folder is None
        self.dir = folder if folder is not None else Path(tempfile.mkdtemp(prefix="chatctl-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        try:
            for _ in range(5):  # the free port may be taken before redis binds it
                self.port = _free_port()
                if self.start():
                    return
            raise BenchError(f"redis-server did not start: {self.log_tail()}")
        except BaseException:
            self.stop()
            self.cleanup()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def command(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else [
            "--appendonly", "no",
        ]  # fmt: skip
        return [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--dir", str(self.dir), "--save", "", *persistence),
            *("--logfile", str(self.dir / "redis.log"), "--daemonize", "no"),
        ]

    def start(self, timeout: float = 10.0) -> bool:
        """Start it (again, on the same port and folder); False if it exited at once."""
        self.proc = subprocess.Popen(
            [self.executable, *self.command[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches bench, which stops it
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ping():
                return True
            if self.proc.poll() is not None:
                self.proc = None
                return False
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise BenchError(f"redis-server on port {self.port} did not answer within {timeout:g} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def info_cpu(self) -> float | None:
        """CPU seconds Redis counts itself (``INFO cpu``: used_cpu_sys + used_cpu_user)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"INFO cpu\r\n")
                data = b""
                while True:  # one bulk string: $LENGTH, CRLF, the text
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
                    head, _, body = data.partition(b"\r\n")
                    if head.startswith(b"$") and len(body) >= int(head[1:]):
                        break
        except (OSError, ValueError):
            return None
        found = {}
        for line in data.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key in ("used_cpu_sys", "used_cpu_user"):
                with contextlib.suppress(ValueError):
                    found[key] = float(value)
        return sum(found.values()) if len(found) == 2 else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM: Redis writes and syncs its append-only file, then exits)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """SIGTERM, then start again on the same port and folder (so the same data)."""
        self.stop()
        if not self.start():
            raise BenchError(f"redis-server did not start again: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            lines = (self.dir / "redis.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " / ".join(lines[-3:])

    def cleanup(self) -> None:
        if self.own_folder:
            shutil.rmtree(self.dir, ignore_errors=True)
