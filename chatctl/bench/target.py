"""The server under test, as the parent sees it directly: the ``chatctl serve`` bench starts
(with its IRC door for IRC clients), the protocol version it speaks, whether an IRC server
echoes, a ``status`` request, and the stuck client that joins and never reads.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from chatctl.bench.config import BenchConfig, BenchError
from chatctl.bench.irc import _REFUSED, LOBBY, parse, registration
from chatctl.eventloop import LOOP_ENV
from chatctl.oslimits import raise_open_file_limit
from chatctl.protocol import PROTOCOL_VERSION, Bye, Hello, StatusRequest, encode

_TCP_STATES = {1: "established", 7: "reset by the server", 8: "closed by the server"}


@functools.cache
def _serve_options() -> frozenset[str]:
    """The options this ``chatctl serve`` knows (pacing and limits arrived in 0.2); asked
    once per bench (a cluster run starts several servers)."""
    out = subprocess.run(
        [sys.executable, "-m", "chatctl", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**_child_env(), "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
        check=False,
    ).stdout
    return frozenset(re.findall(r"--[a-z][a-z-]+", out))


def _child_env() -> dict[str, str]:
    """Our environment without chatctl's settings (a host or password meant for something
    else), except the event loop: the server bench starts runs on the one asked for."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_") or k == LOOP_ENV}


class _SpawnedServer:
    """``chatctl serve`` on a free loopback port, in a temporary folder of its own: its log,
    its data folder (``CHATCTL_DATA_DIR``) and, with ``cfg.history``, its history file.
    Without ``cfg.history`` it keeps nothing (``--no-history``, if this serve knows it).
    With ``backplane`` (a Redis URL), one server of a cluster (``serve --backplane``).
    ``cleanup`` removes the folder."""

    def __init__(self, cfg: BenchConfig, backplane: str | None = None) -> None:
        assert cfg.clients is not None
        known = _serve_options()
        room = cfg.clients + 64
        wanted = {
            "--rate": "0",  # flood pacing off: measure speed, not the policy
            "--max-clients": str(room),
            "--max-per-address": str(room),
            "--max-new-per-minute": str(max(100_000, room * 60)),
        }
        extra = [x for option, value in wanted.items() if option in known for x in (option, value)]
        self.dir = Path(tempfile.mkdtemp(prefix="chatctl-bench-"))
        self.history_path: Path | None = None
        if cfg.history:
            if "--history" not in known:
                self.cleanup()
                raise BenchError("this chatctl serve keeps no history (no --history option)")
            self.history_path = self.dir / "history.sqlite3"
            extra += ["--history", str(self.history_path)]
        elif "--no-history" in known:
            extra.append("--no-history")
        if cfg.speaks_irc:
            if "--irc" not in known:
                self.cleanup()
                raise BenchError("this chatctl serve has no IRC door (no --irc option)")
            extra += ["--irc", "0"]
        if backplane is not None:
            if "--backplane" not in known:
                self.cleanup()
                raise BenchError("this chatctl serve has no --backplane option")
            extra += ["--backplane", backplane]
        #: The IRC door's port (``serve --irc 0``), once the log says it.
        self.irc_port: int | None = None
        self.command = ["chatctl", "serve", "--host", "127.0.0.1", "--port", "0", *extra]
        self.log_path = self.dir / "serve.log"
        raise_open_file_limit(room + 256)  # inherited by the server
        # A data folder of its own even with --no-history: nothing of a run reaches the user's.
        env = {**_child_env(), "CHATCTL_DATA_DIR": str(self.dir / "data")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chatctl", *self.command[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches bench, which stops it
            )
        try:
            self.port = self._wait_for_port(irc=cfg.speaks_irc)
        except BaseException:
            self.stop()
            self.cleanup()
            raise

    def _wait_for_port(self, irc: bool = False) -> int:
        """The chatctl port, from ``listening on 127.0.0.1:P[, IRC on 127.0.0.1:Q] ...``
        (a whole line: a line still being written could cut a number short)."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            found = re.search(
                r"listening on 127\.0\.0\.1:(\d+)(?:, IRC on 127\.0\.0\.1:(\d+))?.*\n",
                self.log(),
            )
            if found:
                if irc and found.group(2) is None:
                    self.stop()
                    raise BenchError("chatctl serve --irc 0 did not say where its IRC door is")
                self.irc_port = int(found.group(2)) if found.group(2) else None
                return int(found.group(1))
            if self.proc.poll() is not None:
                tail = " / ".join(self.log().strip().splitlines()[-3:])
                self.stop()
                raise BenchError(f"chatctl serve exited with code {self.proc.returncode}: {tail}")
            time.sleep(0.02)
        self.stop()
        raise BenchError("chatctl serve did not say where it listens within 20 s")

    @property
    def event_loop(self) -> str | None:
        """The loop the server says it runs on (logged with its capacity), if it said."""
        found = re.search(r"event loop: (\w+)", self.log())
        return found.group(1) if found else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        """Remove the folder: the log, the data folder, the history file and its companions."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _chatctl_status(host: str, port: int, timeout: float = 5.0) -> tuple[dict[str, Any], float]:
    """A raw ``status`` request: (the reply's ``server`` object, milliseconds it took)."""
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode(StatusRequest()))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed before the status reply")
            data += chunk
    elapsed = (time.perf_counter() - started) * 1000
    reply = msgspec.json.decode(data.split(b"\n", 1)[0])
    if not isinstance(reply, dict) or reply.get("type") != "status_reply":
        raise ConnectionError("no status reply")
    server = reply.get("server")
    return (server if isinstance(server, dict) else {}), elapsed


def _protocol_version(host: str, port: int, name: str, timeout: float = 10.0) -> int:
    """The version to speak: ours (2), or 1 for a server that answers ``unsupported_version``
    (a version-1 server, which had one room). A hello in no rooms (``rooms: []``) joins
    nobody's room, so nobody is told; a version-1 server refuses it before it reads further.
    """
    hello = Hello(version=PROTOCOL_VERSION, name=name, rooms=[])
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode(hello))
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise BenchError(f"{host}:{port} closed the connection at hello")
            data += chunk
        try:
            reply = msgspec.json.decode(data.split(b"\n", 1)[0])
        except msgspec.DecodeError:
            raise BenchError(f"{host}:{port} does not speak the chatctl protocol") from None
        if not isinstance(reply, dict):
            raise BenchError(f"{host}:{port} does not speak the chatctl protocol")
        if reply.get("type") == "welcome":
            sock.sendall(encode(Bye()))
            return PROTOCOL_VERSION
        if reply.get("type") == "error" and reply.get("code") == "unsupported_version":
            return 1
        raise BenchError(f"{host}:{port} refused bench's hello: {reply.get('code', reply)}")


def _irc_echo(host: str, port: int, timeout: float = 5.0) -> bool:
    """Does the IRC server at ``host:port`` offer ``echo-message``? Asked with ``CAP LS
    302`` before registering, then ``QUIT``; a server without CAP (421, 451, or silence)
    does not."""
    caps: list[bytes] = []
    heard, anything = b"", False
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"CAP LS 302\r\n")
        try:
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                heard, anything = heard + chunk, True
                *lines, heard_rest = heard.split(b"\n")
                for line in lines:
                    if line.lstrip().startswith(b"{"):
                        raise BenchError(
                            f"{host}:{port} speaks the chatctl protocol, not IRC: leave out --irc"
                        )
                    _, command, params = parse(line.rstrip(b"\r"))
                    if command == b"CAP" and len(params) >= 3 and params[1].upper() == b"LS":
                        caps += [cap.split(b"=")[0] for cap in params[-1].split()]
                        if not (len(params) >= 4 and params[2] == b"*"):  # not "more to come"
                            return b"echo-message" in caps
                    elif command in (b"421", b"451", b"ERROR"):
                        return False
                heard = heard_rest
        except TimeoutError:
            if not anything:
                raise BenchError(
                    f"{host}:{port} answered nothing to CAP LS: is it an IRC server?"
                ) from None
        finally:
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
    return False


class _StuckClient:
    """A client that joins and never reads again. A small receive buffer, so the kernel
    does not absorb megabytes before the server has to decide what to do with it."""

    def __init__(
        self, host: str, port: int, raw: bool, name: str, version: int, irc: bool = False
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        if irc:
            self.sock.sendall(registration(name, [LOBBY], echo=False))
            line = b""
            while True:  # up to the end of #lobby's names, then never read again
                chunk = self.sock.recv(1)
                if not chunk:
                    raise BenchError("the stuck client was refused by the IRC server")
                line += chunk
                if chunk == b"\n":
                    command = parse(line.rstrip())[1]
                    if command == b"366":
                        break
                    if command == b"ERROR" or command in _REFUSED:
                        raise BenchError(f"the stuck client could not join: {line.strip()!r}")
                    line = b""
        elif not raw:
            self.sock.sendall(encode(Hello(version=version, name=name)))
            head = b""
            while b"\n" not in head:  # the welcome, then never read again
                chunk = self.sock.recv(1)
                if not chunk:
                    raise BenchError("the stuck client was refused by the server")
                head += chunk
            if b'"welcome"' not in head:
                raise BenchError("the stuck client could not join")
        self.name = name

    def state(self) -> str:
        """How the connection stands; read only once the run is over.

        A reset sent while the stuck client's receive window is zero may not be
        accepted, so the socket can look established until it is read: read
        what is there (for at most a second) until the reset or the end shows.
        """
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        if info[0] != 1:
            return _TCP_STATES.get(info[0], f"tcp state {info[0]}")
        self.sock.settimeout(0.2)
        end = time.monotonic() + 1.0
        try:
            while time.monotonic() < end:
                if not self.sock.recv(1 << 20):
                    return "closed by the server"
        except ConnectionResetError:
            return "reset by the server"
        except TimeoutError:
            pass  # nothing more is coming: the server still holds the connection open
        return "established"

    def close(self) -> None:
        self.sock.close()
