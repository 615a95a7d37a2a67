"""The servers compare.py puts beside chatctl: ``ncat --chat``, the asyncio relay, a
baseline (an older chatctl built from a git commit into a venv of its own) and ngIRCd.

chatctl itself runs in the server ``chatctl bench`` starts; these are started here afresh
for each run and driven with ``chatctl bench --port P --server-pid PID`` (``--raw`` for the
line relays, ``--irc`` for ngIRCd; a baseline speaks the chatctl protocol, version 1 if that
is all it knows).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELAY = ROOT / "benchmarks" / "relay.py"
NGIRCD = "/usr/sbin/ngircd"
#: ngIRCd in the foreground on loopback, with no limit on connections (per address too) or
#: channels per user, nicks as long as bench's, no DNS, ident or PAM lookups, and no other
#: configuration read (IncludeDir). ``MaxPenaltyTime`` is the one flood setting it has:
#: ``penalties`` keeps its default (-1: a client that sends more than 3 commands at once,
#: or 256 bytes in a second, is not read for a second), else 0 (never paused; then a client
#: with more than 2 KiB of unread commands is disconnected, "Receive buffer space
#: exhausted", so keep ``--window`` x line length under 2 KiB).
NGIRCD_CONF = """[Global]
Name = bench.ngircd.test
Info = chatctl bench
AdminInfo1 = chatctl bench
AdminInfo2 = loopback
AdminEMail = bench@localhost
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 31
MaxPenaltyTime = {penalty}
[Options]
DNS = no
Ident = no
PAM = no
IncludeDir = {folder}/conf.d
"""


@dataclass(frozen=True)
class Running:
    port: int
    pid: int
    #: Plain lines (ncat, the relay) rather than chatctl frames.
    raw: bool
    #: An IRC server (ngIRCd): bench --irc.
    irc: bool = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Is something listening on 127.0.0.1:port? Read from /proc: a test connection
    would make ncat announce it, and ncat exits when such a client resets."""
    needle = f"0100007F:{port:04X} 00000000:0000 0A"
    return needle in Path("/proc/net/tcp").read_text()


class Baseline:
    """An older chatctl (``ref``, a git commit) installed with its ``speed`` extra into a
    temporary venv: ``git archive`` of the commit (the repository and its worktrees are
    left alone), ``python -m venv``, ``pip install '.[speed]'``. ``close`` removes it."""

    def __init__(self, ref: str) -> None:
        self.sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.ref = ref
        self.dir = Path(tempfile.mkdtemp(prefix=f"chatctl-baseline-{self.sha[:7]}-"))
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        src = self.dir / "src"
        src.mkdir()
        archive = subprocess.Popen(
            ["git", "-C", str(ROOT), "archive", "--format=tar", self.sha], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {self.sha} failed")
        venv = self.dir / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        print(f"building the baseline {self.ref} ({self.sha[:7]}) in {venv}", file=sys.stderr)
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"{src}[speed]"],
            capture_output=True,
            text=True,
            check=False,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip could not install the baseline: {pip.stderr.strip()}")
        self.chatctl = venv / "bin" / "chatctl"
        version = subprocess.run(
            [str(self.chatctl), "--version"], capture_output=True, text=True, check=True
        )
        self.version = version.stdout.strip()
        serve_help = subprocess.run(
            [str(self.chatctl), "serve", "--help"],
            capture_output=True,
            text=True,
            check=False,
            env={"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        ).stdout
        self.options = set(re.findall(r"--[a-z][a-z-]+", serve_help))

    def command(self, clients: int) -> list[str]:
        """``serve`` as bench starts chatctl: pacing off, limits raised to fit, no history
        (``--no-history``, for a baseline that keeps it)."""
        room = clients + 64
        wanted = {
            "--rate": "0",
            "--max-clients": str(room),
            "--max-per-address": str(room),
            "--max-new-per-minute": str(max(100_000, room * 60)),
        }
        extra = [x for opt, value in wanted.items() if opt in self.options for x in (opt, value)]
        if "--no-history" in self.options:
            extra.append("--no-history")
        return [str(self.chatctl), "serve", "--host", "127.0.0.1", "--port", "0", *extra]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def start_ngircd(folder: Path, penalties: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """ngIRCd on a free loopback port, its configuration and log in ``folder``."""
    port = free_port()
    (folder / "conf.d").mkdir(exist_ok=True)
    conf = folder / "ngircd.conf"
    penalty = -1 if penalties else 0
    conf.write_text(NGIRCD_CONF.format(port=port, folder=folder, penalty=penalty))
    with (folder / "ngircd.log").open("wb") as log:
        proc = subprocess.Popen(
            [NGIRCD, "-n", "-f", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait(lambda: port if listening(port) else None, proc, "ngircd")
    return proc, port


@contextmanager
def started(kind: str, clients: int, baseline: Baseline | None) -> Iterator[Running]:
    """Start ncat --chat, the relay, the baseline or ngIRCd on a free loopback port."""
    folder = None
    if kind in ("ngircd", "ngircd-penalties"):
        from chatctl.oslimits import raise_open_file_limit  # as installed, for bench too

        raise_open_file_limit(clients + 256)  # inherited by ngIRCd (idle: 15 000 clients)
        folder = Path(tempfile.mkdtemp(prefix="chatctl-ngircd-"))
        try:
            proc, port = start_ngircd(folder, penalties=kind == "ngircd-penalties")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    elif kind == "ncat":
        port = free_port()
        cmd = ["ncat", "--chat", "-l", "127.0.0.1", str(port), "--max-conns", str(clients + 64)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _wait(lambda: port if listening(port) else None, proc, "ncat")
    elif kind == "relay":
        proc = subprocess.Popen(
            [sys.executable, str(RELAY), "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if not found:
            proc.kill()
            raise RuntimeError("the relay did not start")
        port = int(found.group(1))
    else:
        assert baseline is not None
        # A folder of its own: the log (every join: a file never fills up as a pipe would)
        # and the data folder, so that not even a baseline without --no-history writes
        # into the user's. None of our CHATCTL_* settings but the event loop.
        folder = Path(tempfile.mkdtemp(prefix="chatctl-baseline-run-"))
        log = folder / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
        env["CHATCTL_DATA_DIR"] = str(folder / "data")
        if "CHATCTL_LOOP" in os.environ:
            env["CHATCTL_LOOP"] = os.environ["CHATCTL_LOOP"]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                baseline.command(clients),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

        def port_in_log() -> int | None:
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            return int(found.group(1)) if found else None

        try:
            port = _wait(port_in_log, proc, "the baseline")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    try:
        irc = kind.startswith("ngircd")
        yield Running(port, proc.pid, raw=kind in ("ncat", "relay"), irc=irc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _wait(
    port: Callable[[], int | None], proc: subprocess.Popen[bytes] | subprocess.Popen[str], what: str
) -> int:
    end = time.monotonic() + 20
    while True:
        found = port()
        if found is not None:
            return found
        if time.monotonic() > end or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
