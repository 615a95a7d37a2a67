"""The interactive ``chatctl join`` outlives its server: it reconnects, and loses nothing silently.

Driven in tmux like tests/test_terminal.py. The servers are real ``chatctl serve``
processes on one fixed port (bound to port 0, then freed), so a second server can
take over from a killed one. Backoff: attempts 1, 3, 7, ... seconds after the loss.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatctl.ui.render import unsent_line
from tests.support import (
    FACTOR,
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    join_in,
    run_chatctl,
    tmux_terminal,
)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with tmux_terminal() as term:
        yield term


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(port: int = 0) -> Iterator[ServeProcess]:
    server = ServeProcess(port=port)
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


def lost_notice(port: int) -> str:
    return rf"^{STAMP} \* connection to 127\.0\.0\.1:{port} lost; reconnecting in 1 s…$"


def test_reconnects_to_a_new_server_and_reports_what_was_not_sent(terminal: Terminal) -> None:
    port = free_port()
    with serving(port) as first:
        alice = join_in(terminal, port)
        # A line the server takes in but never relays: it is frozen, then killed.
        first.proc.send_signal(signal.SIGSTOP)
        alice.type("in flight")
        alice.wait_last("[#lobby] alice> in flight")
        alice.keys("Enter")
        alice.wait_last("[#lobby] alice>")
        first.stop(signal.SIGKILL)

    # Unknown yet: the server may have relayed it (the rejoin's replay will tell).
    alice.wait_screen(lost_notice(port) + rf"\n{STAMP} \* not confirmed: in flight$")
    alice.type("typed offline")
    alice.keys("Enter")
    alice.wait_screen(rf"^{STAMP} \* not sent \(offline\): typed offline$")
    alice.wait_screen(
        rf"^{STAMP} \* attempt 1 failed: connection refused; retrying in 2 s…$", timeout=5
    )
    alice.wait_last("[offline] alice>")  # the prompt stays usable throughout, and says so

    with serving(port) as second:
        alice.wait_screen(
            rf"^{STAMP} \* reconnected to chatctl \S+ as alice in #lobby; "
            r"online: nobody else yet\.\n"
            rf"{STAMP} \* not sent: in flight$",  # not in this server's history
            timeout=10,
        )
        bob = PipedClient("bob", port)
        try:
            bob.joined()
            alice.wait_screen(rf"^{STAMP} \* bob joined$")
            alice.type("back again")
            alice.keys("Enter")
            bob.out.wait_for(rf"^{STAMP} alice: back again$")
            alice.wait_screen(rf"^{STAMP} alice: back again$")
        finally:
            bob.kill()
        status = run_chatctl("status", "--port", str(port), "--json")
        assert '"messages_relayed":1' in status.stdout.replace(" ", ""), status.stdout
        second.log.wait_for(r"\+ alice joined")

    screen = alice.screen()
    assert "EXIT=" not in screen, alice.show()
    # Each line is reported once, and neither was sent anywhere later.
    assert len(re.findall(r"not sent: in flight", screen)) == 1, alice.show()
    assert len(re.findall(r"not sent \(offline\): typed offline", screen)) == 1, alice.show()


def test_ctrl_d_while_waiting_to_retry_exits_zero_at_once(terminal: Terminal) -> None:
    with serving() as server:
        alice = join_in(terminal, server.port)
        server.stop(signal.SIGKILL)
    # Attempt 2 fails 3 s after the loss; the next one is 4 s away.
    alice.wait_screen(rf"^{STAMP} \* attempt 2 failed: .*; retrying in 4 s…$", timeout=6)
    alice.keys("C-d")
    started = time.monotonic()
    assert alice.exit_status(timeout=3) == 0, alice.show()
    assert time.monotonic() - started < 2 * FACTOR, alice.show()  # not after the 4 s wait
    assert "attempt 3" not in alice.screen(), alice.show()


@pytest.mark.parametrize(
    ("typed", "keys"),
    [
        pytest.param("", ["C-c"], id="ctrl-c"),
        pytest.param("exit", ["Enter"], id="exit"),
        pytest.param("/quit", ["Enter"], id="slash-quit"),
    ],
)
def test_leaving_while_offline_exits_zero(terminal: Terminal, typed: str, keys: list[str]) -> None:
    with serving() as server:
        alice = join_in(terminal, server.port)
        server.stop(signal.SIGKILL)
        alice.wait_screen(lost_notice(server.port))
    alice.type(typed)
    alice.keys(*keys)
    assert alice.exit_status(timeout=3) == 0, alice.show()
    assert "not sent" not in alice.screen(), alice.show()  # the quit word was not a message


def test_a_port_that_no_longer_speaks_chatctl_ends_the_retries(terminal: Terminal) -> None:
    """Reconnecting stops, with the matching exit code, when trying again cannot help."""
    port = free_port()
    with serving(port):
        alice = join_in(terminal, port)
    alice.wait_screen(lost_notice(port))

    # Something else takes the port before the first attempt (1 s after the loss).
    listener = socket.create_server(("127.0.0.1", port))
    answered = threading.Event()

    def answer_like_a_web_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            answered.set()
            conn.recv(1024)

    thread = threading.Thread(target=answer_like_a_web_server, daemon=True)
    thread.start()
    try:
        alice.wait_screen(
            rf"^{STAMP} \* cannot rejoin: 127\.0\.0\.1:{port} sent something that is not chatctl$"
        )
        assert alice.exit_status() == 8, alice.show()
        assert answered.is_set()
    finally:
        listener.close()
        thread.join(5 * FACTOR)


def test_not_sent_notices_are_inert_and_indented() -> None:
    line = unsent_line(0.0, "first\x1b[2J\nsecond", offline=True).plain
    stamp, rest = line.split(" ", 1)
    assert rest.split("\n") == [
        r"* not sent (offline): first\x1b[2J",
        " " * len(f"{stamp} * not sent (offline): ") + "second",
    ]
    assert unsent_line(0.0, "[bold]x[/]").plain.endswith("* not sent: [bold]x[/]")


def test_joining_takes_the_name_back_and_the_session_replaced_stops(
    terminal: Terminal, tmp_path: Path
) -> None:
    """On a server with history, ``chatctl join`` with the name's secret takes the name
    from a session still holding it (one left behind) rather than wait for it to time out."""
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        left_behind = PipedClient("alice", server.port).joined()  # the same claims file
        try:
            alice = join_in(terminal, server.port)  # at once: no "name taken", no retry
            assert left_behind.wait(10) == 16, left_behind.everything()
        finally:
            left_behind.kill()
        assert "attempt" not in alice.screen(), alice.show()
        # The other way round: joined again from elsewhere, the terminal one stops.
        newer = PipedClient("alice", server.port).joined()
        try:
            replaced = (
                rf"^{STAMP} \* 127\.0\.0\.1:{server.port}: alice joined again from "
                r"127\.0\.0\.1:\d+: this connection is closed$"
            )
            alice.wait_screen(replaced)
            assert alice.exit_status() == 16
            assert "reconnecting" not in alice.screen(), alice.show()
            newer.send("the name is mine")
            newer.out.wait_for(r"alice: the name is mine$")
        finally:
            newer.kill()
    finally:
        server.stop(signal.SIGKILL)


class Proxy:
    """A real TCP relay between the client and the server, whose connections can be
    made deaf (the server's bytes dropped) and then cut: the network losing an echo."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            deaf = threading.Event()
            self._pairs.append((down, up, deaf))
            threading.Thread(target=self._pump, args=(down, up, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, deaf), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, deaf: threading.Event | None) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if deaf is None or not deaf.is_set():
                    dst.sendall(data)

    def deafen(self) -> None:
        """From now on the client hears nothing on the connections open now."""
        for _, _, deaf in self._pairs:
            deaf.set()

    def cut(self) -> None:
        """Close the connections open now (new ones are relayed as before)."""
        pairs, self._pairs = self._pairs, []
        for down, up, _ in pairs:
            for sock in (down, up):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_a_line_relayed_before_the_loss_is_found_in_the_replay_not_reported_lost(
    terminal: Terminal, tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    proxy = Proxy(server.port)
    bob = PipedClient("bob", server.port)
    try:
        bob.joined()
        alice = join_in(terminal, proxy.port)
        proxy.deafen()  # the server still reads alice, but its echo never reaches her
        alice.type("in limbo")
        alice.keys("Enter")
        bob.out.wait_for(rf"^{STAMP} alice: in limbo$")  # relayed, and so kept
        proxy.cut()
        alice.wait_screen(lost_notice(proxy.port) + rf"\n{STAMP} \* not confirmed: in limbo$")
        alice.wait_screen(rf"^{STAMP} \* reconnected to chatctl \S+ as alice in #lobby; ")
        alice.wait_screen(rf"^{STAMP} alice: in limbo$")  # the replay has it
        bob.send("after the replay")
        alice.wait_screen(rf"^{STAMP} bob: after the replay$")
        assert "not sent" not in alice.screen(), alice.show()
    finally:
        bob.kill()
        proxy.close()
        server.stop(signal.SIGKILL)
