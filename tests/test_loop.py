"""The event loop (#5): uvloop when installed, ``CHATCTL_LOOP`` to choose, clear errors.

Real ``chatctl`` processes on each loop. "uvloop missing" is a real import failure in
the child: ``sys.modules["uvloop"] = None`` makes ``import uvloop`` raise the same
``ModuleNotFoundError`` an installation without it raises; nothing in chatctl is patched.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import socket
import ssl
import subprocess
import sys

import pytest

from chatctl import eventloop
from chatctl.exitcodes import ExitCode
from tests.support import FACTOR, STAMP, PipedClient, ServeProcess, env

#: ``chatctl`` as a Python without uvloop would run it (``python -c CODE args``: argv[1:]).
WITHOUT_UVLOOP = [
    sys.executable,
    "-X",
    "dev",
    "-c",
    "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'chatctl'; "
    "from chatctl.cli import main; main()",
]

#: What a child must never print, on either loop: leaks and errors swallowed by the loop.
TROUBLE = ("Traceback", "ResourceWarning", "never awaited", "Task was destroyed", "Exception in")


def _run(command: list[str], *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20 * FACTOR,
        env=env(**extra_env),
        check=False,
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_room_works_on_each_loop(loop: str) -> None:
    # Development mode in the children, so a leaked transport or a lost task error shows.
    chosen = {"CHATCTL_LOOP": loop, "PYTHONDEVMODE": "1"}
    server = ServeProcess(extra_env=chosen)
    clients: list[PipedClient] = []
    try:
        server.log.wait_for(rf"event loop: {loop}$")
        for name in ("alice", "bob"):
            clients.append(PipedClient(name, server.port, extra_env=chosen))
            clients[-1].joined()
        alice, bob = clients
        alice.send(f"hello over {loop}")
        bob.out.wait_for(rf"^{STAMP} alice: hello over {loop}$")
        bob.send("hi back")
        alice.out.wait_for(rf"^{STAMP} bob: hi back$")

        for client in clients:
            client.close_stdin()
        codes = [client.wait(15) for client in clients]
        assert codes == [0, 0], "\n".join(c.everything() for c in clients)
        server.log.wait_for(r"- alice left \(quit\)")
        server.log.wait_for(r"- bob left \(quit\)")
    finally:
        for client in clients:
            client.kill()
        stopped = server.stop()
    assert stopped == 0, server.log.text()
    server.log.wait_for(r"stopped$")
    for output in (server.log.text(), *(c.err.text() for c in clients)):
        assert not [word for word in TROUBLE if word in output], output


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_bytes_waiting_at_accept_reach_the_tls_layer(loop: str) -> None:
    """A client speaks as soon as it connects: a TLS ClientHello, or a plain hello on the
    wrong port, may be waiting in the socket when the server accepts it. uvloop reads it
    right after connection_made, before the server's handshake task has started TLS: those
    bytes must still reach the TLS layer, else it waits for a ClientHello already taken and
    both sides hang. The server is stopped (SIGSTOP) while the clients connect and speak,
    so the bytes are always there first: the kernel completes connections on its own.
    """
    server = ServeProcess("--tls", extra_env={"CHATCTL_LOOP": loop})
    clients: list[EarlyClient] = []
    try:
        server.log.wait_for(rf"event loop: {loop}$")
        server.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(3):
                clients += [EarlyClient(server.port, tls=True), EarlyClient(server.port)]
        finally:
            server.proc.send_signal(signal.SIGCONT)
        outcomes = [client.outcome() for client in clients]
        assert outcomes == ["tls: handshake done", "plain: closed"] * 3
    finally:
        for client in clients:
            client.sock.close()
        stopped = server.stop()
    assert stopped == 0, server.log.text()
    server.log.wait_for(r": not_tls \(")


class EarlyClient:
    """Connects and speaks at once, without waiting for the server: a TLS ClientHello
    (``tls``), else a plain hello."""

    def __init__(self, port: int, tls: bool = False) -> None:
        self.kind = "tls" if tls else "plain"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5 * FACTOR)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls: ssl.SSLObject | None = None
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the handshake is the point, not trust
            self.tls = context.wrap_bio(self.incoming, self.outgoing)
            with contextlib.suppress(ssl.SSLWantReadError):
                self.tls.do_handshake()
            self.sock.sendall(self.outgoing.read())
        else:
            self.sock.sendall(b'{"type":"hello","version":1,"name":"early"}\n')

    def outcome(self) -> str:
        """How it ends: a TLS handshake completes; a plain hello gets the connection closed."""
        try:
            while True:
                if self.tls is not None:
                    try:
                        self.tls.do_handshake()
                    except ssl.SSLWantReadError:
                        pass
                    else:
                        self.sock.sendall(self.outgoing.read())  # our Finished
                        return f"{self.kind}: handshake done"
                data = self.sock.recv(65536)
                if not data:
                    return f"{self.kind}: closed"
                if self.tls is None:
                    return f"{self.kind}: answered {data!r}"
                self.incoming.write(data)
        except TimeoutError:
            return f"{self.kind}: hung"


@pytest.mark.parametrize(
    ("command", "expected"),
    [(None, "uvloop"), (WITHOUT_UVLOOP, "asyncio")],
    ids=["uvloop-installed", "uvloop-missing"],
)
def test_unset_uses_uvloop_when_installed(command: list[str] | None, expected: str) -> None:
    server = ServeProcess(command=command)
    try:
        server.log.wait_for(rf"event loop: {expected}$")
    finally:
        stopped = server.stop()
    assert stopped == 0, server.log.text()
    assert "Traceback" not in server.log.text()


@pytest.mark.parametrize(
    "args",
    [("serve", "--port", "0"), ("join", "alice", "--port", "1"), ("status", "--port", "1")],
    ids=["serve", "join", "status"],
)
def test_asking_for_a_missing_uvloop_is_one_clear_line(args: tuple[str, ...]) -> None:
    result = _run(WITHOUT_UVLOOP, *args, CHATCTL_LOOP="uvloop")
    assert result.returncode == ExitCode.USAGE, result.stderr
    # Nothing started (no "listening", no connection attempt: port 1 would say unreachable),
    # and -X dev shows no warning about the command's coroutine.
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "chatctl: CHATCTL_LOOP=uvloop but uvloop is not installed: "
        "pip install 'chatctl[speed]', or set CHATCTL_LOOP=asyncio"
    ]


@pytest.mark.parametrize("args", [("serve", "--port", "0"), ("status", "--port", "1")])
def test_an_unknown_loop_is_one_clear_line(args: tuple[str, ...]) -> None:
    result = _run([sys.executable, "-X", "dev", "-m", "chatctl"], *args, CHATCTL_LOOP="tokio")
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("chatctl: CHATCTL_LOOP='tokio' is not a known event loop: ")
    assert "'uvloop' or 'asyncio'" in line


@pytest.mark.parametrize(
    ("value", "expected"), [("", "uvloop"), ("uvloop", "uvloop"), (" AsyncIO ", "asyncio")]
)
def test_the_variable_is_read_leniently(
    value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATCTL_LOOP", value)

    async def name() -> str:
        return eventloop.running_loop_name()

    assert eventloop.choose()[0] == expected
    assert eventloop.run(name()) == expected


def test_a_refused_choice_closes_the_coroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the interpreter warns that it was never awaited, after the error line."""
    monkeypatch.setenv("CHATCTL_LOOP", "tokio")

    async def never() -> None:
        raise AssertionError("must not run")

    coro = never()
    with pytest.raises(eventloop.LoopChoiceError):
        eventloop.run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
