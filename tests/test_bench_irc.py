"""``chatctl bench --irc`` and ``--irc-share`` end to end, tiny: real bench processes against
the IRC door of the server bench starts, and against a small IRC server without
echo-message (as ngIRCd 26 is), which checks the counting when senders do not get their own
lines back. How fast anything is, benchmarks/compare.py measures, outside the suite."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatctl.bench.irc import irc_clients, parse, registration
from chatctl.bench.layout import Layout
from tests.support import run_chatctl


def _bench_json(*args: str) -> dict[str, Any]:
    result = run_chatctl("bench", *args, "--json", CHATCTL_LOOP="asyncio")
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _no_loss(figures: dict[str, Any]) -> None:
    assert figures["messages_sent"] > 0
    assert figures["deliveries"] == figures["deliveries_expected"] > 0
    assert figures["lost"] == 0
    assert figures["errors"] == {}
    assert figures["disconnected"] == {}


def test_fanout_over_irc_loses_nothing() -> None:
    figures = _bench_json("fanout", "--irc", "--clients", "4", "--seconds", "0.5")
    assert figures["irc_clients"] == figures["clients_joined"] == 4
    assert "--irc" in figures["server"]["command"]  # bench started its server's door
    assert figures["irc_port"] not in (None, figures["port"])
    assert figures["protocol"] is None  # nothing spoke chatctl's protocol
    # the door has echo-message: each message comes back to its sender too, 4 receivers
    assert figures["echo"] is True
    assert figures["deliveries_expected"] == figures["messages_sent"] * 4
    _no_loss(figures)
    assert figures["latency"]["samples"] > 0
    assert figures["server"]["status"]["rooms"][0]["members"] == 4


def test_half_the_clients_on_irc_and_half_on_chatctl_share_the_room() -> None:
    figures = _bench_json(
        "rate", "--irc-share", "0.5", "--clients", "6", "--rate", "60", "--seconds", "1"
    )
    assert figures["irc_clients"] == 3
    assert figures["clients_joined"] == 6
    assert figures["protocol"] == 2
    assert 45 <= figures["messages_sent"] <= 61
    # every client has every message, whichever side sent it
    assert figures["deliveries_expected"] == figures["messages_sent"] * 6
    _no_loss(figures)


def test_rooms_over_irc() -> None:
    figures = _bench_json(
        "rooms", "--irc", "--rooms", "3", "--members", "2", "--rooms-per-client", "2",
        "--seconds", "0.5",
    )  # fmt: skip
    assert figures["irc_clients"] == figures["clients_joined"] == 3
    assert figures["deliveries_expected"] == figures["messages_sent"] * 2
    _no_loss(figures)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--irc", "--size", "401"], "--size must be at most 400 bytes with IRC clients"),
        (["--irc", "--raw", "--port", "5000"], "--raw and --irc are two ways of speaking"),
        (["--irc-share", "0.5", "--port", "5000"], "--irc-share needs the server bench starts"),
        (["--irc", "--irc-share", "0.5"], "give --irc (every client) or --irc-share"),
        (["--irc-share", "1.5"], "--irc-share"),
    ],
)
def test_what_irc_cannot_be_asked(args: list[str], message: str) -> None:
    result = run_chatctl("bench", *args, COLUMNS="200")
    assert result.returncode == 2
    assert message in result.stderr


def test_a_share_spreads_irc_over_the_senders_and_the_others() -> None:
    layout = Layout.single(100, 10)
    chosen = irc_clients(layout, 100, 0.5)
    assert len(chosen) == 50
    assert len([c for c in chosen if layout.sends_to(c)]) == 5
    assert irc_clients(layout, 100, 1.0) == frozenset(range(100))
    assert len(irc_clients(layout, 100, 0.25)) == 25
    assert len(irc_clients(Layout.single(7, 7), 7, 0.5)) == 4  # rate: every client sends


def test_registration_is_one_write_and_long_joins_are_split() -> None:
    rooms = [f"#room-number-{n:03d}" for n in range(50)]
    lines = registration("bench1-2", rooms).decode().split("\r\n")
    assert lines[:4] == [
        "CAP REQ :echo-message", "NICK bench1-2", "USER bench1-2 0 * :bench", "CAP END"
    ]  # fmt: skip
    joins = [line for line in lines if line.startswith("JOIN ")]
    assert len(joins) > 1
    assert all(len(line) + 2 <= 512 for line in lines)
    assert [r for line in joins for r in line[5:].split(",")] == rooms


def test_the_rare_lines_are_parsed_as_irc_says() -> None:
    assert parse(b"@time=x :a!b@c PRIVMSG #lobby :hi there") == (
        b"a!b@c", b"PRIVMSG", [b"#lobby", b"hi there"]
    )  # fmt: skip
    assert parse(b"PING :token") == (b"", b"PING", [b"token"])
    assert parse(b":srv 366 me #lobby :End of /NAMES list") == (
        b"srv", b"366", [b"me", b"#lobby", b"End of /NAMES list"]
    )  # fmt: skip
    assert parse(b"") == (b"", b"", [])


class _IrcServer(socketserver.ThreadingTCPServer):
    """An IRC server in a few lines, without echo-message (as ngIRCd 26): CAP LS and NAK,
    NICK/USER/CAP END, JOIN #lobby with NAMES, PRIVMSG relayed to the others only, a PING
    to each client once it joined (``pongs`` counts the answers), QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _IrcHandler)
        self.lock = threading.Lock()
        self.members: dict[str, socket.socket] = {}
        self.pongs = 0

    def others(self, me: str, line: bytes) -> None:
        with self.lock:
            for nick, sock in list(self.members.items()):
                if nick != me:
                    sock.sendall(line)


class _IrcHandler(socketserver.StreamRequestHandler):
    server: _IrcServer

    def handle(self) -> None:
        nick, user, cap, registered = "", "", False, False
        try:
            for raw in self.rfile:
                _, command, params = parse(raw.rstrip(b"\r\n"))
                args = [p.decode() for p in params]
                out: list[str] = []
                if command == b"CAP" and args[:1] == ["LS"]:
                    cap = True
                    out.append(":fake CAP * LS :multi-prefix")
                elif command == b"CAP" and args[:1] == ["REQ"]:
                    cap = True
                    out.append(f":fake CAP * NAK :{args[-1]}")
                elif command == b"CAP" and args[:1] == ["END"]:
                    cap = False
                elif command == b"NICK":
                    nick = args[0]
                elif command == b"USER":
                    user = args[0]
                elif command == b"JOIN":
                    me = f":{nick}!~{user}@127.0.0.1"
                    with self.server.lock:
                        names = " ".join([*self.server.members, nick])
                    self.server.others(nick, f"{me} JOIN :#lobby\r\n".encode())
                    out += [f"{me} JOIN :#lobby", f":fake 353 {nick} = #lobby :{names}"]
                    out += [f":fake 366 {nick} #lobby :End of NAMES list", "PING :fake"]
                elif command == b"PRIVMSG":
                    self.server.others(nick, f":{nick}!~{user}@127.0.0.1 ".encode() + raw)
                elif command == b"PONG":
                    with self.server.lock:
                        self.server.pongs += 1
                elif command == b"QUIT":
                    self.wfile.write(b"ERROR :Closing connection\r\n")
                    return
                if nick and user and not cap and not registered:
                    registered = True
                    out += [f":fake 001 {nick} :Welcome", f":fake 422 {nick} :MOTD File is missing"]
                if out:
                    self.wfile.write("".join(f"{line}\r\n" for line in out).encode())
                if command == b"JOIN":
                    with self.server.lock:
                        self.server.members[nick] = self.request
        except (OSError, ValueError):
            pass
        finally:
            with self.server.lock:
                self.server.members.pop(nick, None)
            if nick:
                self.server.others(nick, f":{nick}!~{user}@127.0.0.1 QUIT :gone\r\n".encode())


@pytest.fixture
def irc_server() -> Iterator[_IrcServer]:
    server = _IrcServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_irc_server_without_echo_message(irc_server: _IrcServer) -> None:
    port = str(irc_server.server_address[1])
    figures = _bench_json(
        "fanout", "--irc", "--clients", "3", "--window", "4", "--seconds", "0.5", "--host",
        "127.0.0.1", "--port", port,
    )  # fmt: skip
    assert figures["echo"] is False
    assert figures["server"]["status"] is None  # no chatctl status from an IRC server
    # senders do not get their own lines back: 2 receivers each
    assert figures["deliveries_expected"] == figures["messages_sent"] * 2
    _no_loss(figures)
    assert irc_server.pongs == 3  # every client answered the server's PING
    assert any("no IRCv3 echo-message" in note for note in figures["notes"])
