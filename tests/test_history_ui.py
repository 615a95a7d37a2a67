"""History as people see it: real ``chatctl serve`` processes keeping history, the
interactive ``chatctl join`` in tmux, piped clients.

A history file from days ago is written beforehand through the server's own
``History``; the reconnection test writes what was "missed" the same way while no
server runs, so nothing depends on when the client's next attempt comes.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chatctl.protocol import Message
from chatctl.server.history import History
from chatctl.server.store import Store
from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    chatctl_command,
    join_in,
    tmux_terminal,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

DAY = 24 * 3600
DATE_LINE = r"^— \w+ \d{1,2} \w+ \d{4} —$"
DATED_STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]"


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with tmux_terminal() as term:
        yield term


@pytest.fixture
def clients() -> Iterator[list[PipedClient]]:
    started: list[PipedClient] = []
    yield started
    for client in started:
        client.kill()


def piped(clients: list[PipedClient], name: str, port: int, *args: str) -> PipedClient:
    client = PipedClient(name, port, *args)
    clients.append(client)
    return client.joined()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def expected_date_line(timestamp: float) -> str:
    day = datetime.fromtimestamp(timestamp)
    return f"— {day:%A} {day.day} {day:%B %Y} —"


def write_history(path: Path, texts: list[str], when: float, name: str = "carol") -> None:
    """Add ``texts`` to ``#lobby`` in the history file, as a server would have kept them."""
    store = Store.open(path)
    try:
        history = History(store)
        seq = history.room_seq("#lobby")
        for offset, text in enumerate(texts, start=1):
            history.add(Message(seq + offset, when + offset, name, text, "#lobby"))
        history.mark("#lobby", seq + len(texts))
        history.commit()
    finally:
        store.close()


_SGR = re.compile(r"\x1b\[([0-9;]*)m")

Cells = list[tuple[str, bool]]


def dim_rows(styled: str) -> list[Cells]:
    """Each row of a ``capture-pane -e`` screen as its characters, each with whether it is
    dim (SGR 2). tmux writes only what changes, so a row goes on in the style the row
    before ended in: the screen is read as a whole."""
    rows: list[Cells] = [[]]
    dim = False
    position = 0
    for match in [*_SGR.finditer(styled), None]:
        end = len(styled) if match is None else match.start()
        for ch in styled[position:end]:
            if ch == "\n":
                rows.append([])
            else:
                rows[-1].append((ch, dim))
        if match is None:
            break
        position = match.end()
        params = [int(p) if p else 0 for p in match.group(1).split(";")]
        index = 0
        while index < len(params):
            code = params[index]
            if code in (0, 22):
                dim = False
            elif code == 2:
                dim = True
            elif code in (38, 48, 58):  # extended colours: 5;n or 2;r;g;b
                index += 2 if params[index + 1 : index + 2] == [5] else 4
            index += 1
    return rows


def styled_row(term: Terminal, text: str) -> Cells:
    """The one row of the screen that shows ``text``."""
    rows = [row for row in dim_rows(term.styled()) if text in "".join(ch for ch, _ in row)]
    assert len(rows) == 1, (text, len(rows), term.show())
    return rows[0]


def fully_dim(row: Cells) -> bool:
    visible = [dim for ch, dim in row if not ch.isspace()]
    return bool(visible) and all(visible)


# --------------------------------------------------------------------------- terminal


def test_the_terminal_shows_earlier_messages_dimmed(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    today = expected_date_line(time.time())
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        bob = piped(clients, "bob", server.port)
        for text in ("first of before", "second of before"):
            bob.send(text)
            bob.out.wait_for(rf"^{STAMP} bob: {text}$")
        alice = join_in(terminal, server.port)  # the default: 50 at a terminal
        alice.wait_screen(
            rf"^{STAMP} \* joined .* as alice in #lobby; .*\n"
            rf"{STAMP} bob: first of before\n{STAMP} bob: second of before$"
        )
        bob.send("now live")
        alice.wait_screen(rf"^{STAMP} bob: second of before\n{STAMP} bob: now live$")
        for text in ("first of before", "second of before"):
            assert fully_dim(styled_row(alice, text)), alice.styled()
        assert not fully_dim(styled_row(alice, "now live"))
        assert not fully_dim(styled_row(alice, "joined chatctl"))
        if expected_date_line(time.time()) == today:  # (a run over midnight has one)
            assert not re.search(DATE_LINE, alice.screen(), re.M), alice.show()
    finally:
        server.stop()


def test_messages_from_another_day_come_after_a_date_line(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite3"
    when = (datetime.now().replace(hour=12, minute=0, second=0) - timedelta(days=3)).timestamp()
    write_history(path, ["from three days ago", "and a reply"], when)
    server = ServeProcess("--history", str(path))
    try:
        alice = join_in(terminal, server.port)
        old = expected_date_line(when)
        alice.wait_screen(
            rf"^{STAMP} \* joined .* as alice in #lobby; .*\n{re.escape(old)}\n"
            rf"{STAMP} carol: from three days ago\n{STAMP} carol: and a reply$"
        )
        assert re.fullmatch(DATE_LINE, old)
        assert fully_dim(styled_row(alice, "from three days ago"))
        assert fully_dim(styled_row(alice, old))  # plain dim
        # The next line is from today again: a date line says so first.
        piped(clients, "bob", server.port)
        today = expected_date_line(time.time())
        alice.wait_screen(
            rf"^{STAMP} carol: and a reply\n{re.escape(today)}\n{STAMP} \* bob joined$"
        )
    finally:
        server.stop()


def test_a_replayed_mention_rings_no_bell(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        bob = piped(clients, "bob", server.port, "--commands")
        bob.send("alice: are you there?")
        bob.out.wait_for(rf"^{STAMP} bob: alice: are you there\?$")
        # The pane waits for a line before it runs the client, so bells are watched from
        # its first moment on: the replay comes right after the welcome.
        argv = ["join", "alice", "--host", "127.0.0.1", "--port", str(server.port)]
        terminal.start("sh", "-c", 'read go && exec "$@"', "sh", *chatctl_command(), *argv)
        terminal.watch_bells(tmp_path / "bells")
        terminal.keys("Enter")
        alice = terminal
        alice.wait_screen(rf"^{STAMP} bob: alice: are you there\?$")
        alice.wait_last("[#lobby] alice>")
        bob.send("nothing for anyone")  # a live line after the replay: it has all been shown
        alice.wait_screen(rf"^{STAMP} bob: nothing for anyone$")
        assert terminal.bells() == 0
        bob.send("alice: and now?")  # a live mention does ring
        alice.wait_screen(rf"^{STAMP} bob: alice: and now\?$")
        wait_until(lambda: terminal.bells() == 1, 5, "one bell")
    finally:
        server.stop()


def test_slash_join_asks_for_as_many_as_the_command_line(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        bob = piped(clients, "bob", server.port, "--room", "ops")
        for text in ("older in ops", "newest in ops"):
            bob.send(text)
            bob.out.wait_for(rf"^{STAMP} bob: {text}$")
        alice = join_in(terminal, server.port, "alice", "--history", "1")
        alice.type("/join ops")
        alice.keys("Enter")
        alice.wait_screen(
            rf"^{STAMP} \* you are in #ops; online: bob\.\n{STAMP} #ops bob: newest in ops$"
        )
        alice.wait_last("[#ops] alice>")
        assert "older in ops" not in alice.screen(), alice.show()
        assert fully_dim(styled_row(alice, "newest in ops"))
    finally:
        server.stop()


def rows_with(term: Terminal, text: str) -> list[Cells]:
    return [row for row in dim_rows(term.styled()) if text in "".join(ch for ch, _ in row)]


def test_search_and_a_private_history_in_the_terminal(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        alice = join_in(terminal, server.port)
        bob = piped(clients, "bob", server.port, "--commands")
        bob.send("standup moved to 10:30")
        bob.send("/msg alice the standup [bold red]secret[/] \x1b[31mred")
        secret = r"the standup \[bold red\]secret\[/\] \\x1b\[31mred"
        alice.wait_screen(rf"^{STAMP} \[PM from bob\] {secret}$")
        alice.type("/search standup")
        alice.keys("Enter")
        # Found in full (what was looked for), dated, each with its room: oldest first.
        alice.wait_screen(
            rf"^{STAMP} \* 2 found for 'standup':\n"
            rf"{DATED_STAMP} #lobby bob: standup moved to 10:30\n"
            rf"{DATED_STAMP} \[PM from bob\] {secret}$"
        )
        assert not fully_dim(rows_with(alice, "#lobby bob: standup moved")[-1]), alice.styled()
        alice.type("/history bob")
        alice.keys("Enter")
        alice.wait_screen(
            rf"^{STAMP} \* 1 private message with bob:\n{DATED_STAMP} \[PM from bob\] {secret}$"
        )
        assert fully_dim(rows_with(alice, "[PM from bob] the standup")[-1]), alice.styled()
        alice.type("/search nowhere*")
        alice.keys("Enter")
        alice.wait_screen(rf"^{STAMP} \* nothing found for 'nowhere\*'$")
        # A bot searches too (--commands): the page on stdout, its own PM as sent.
        bob.send("/search standup")
        bob.out.wait_for(r"^\S+ \* 2 found for 'standup':$")
        bob.out.wait_for(rf"^{DATED_STAMP} \[PM to alice\] {secret}$")
        assert any(
            re.fullmatch(rf"{DATED_STAMP} #lobby bob: standup moved to 10:30", line)
            for line in bob.out.snapshot()
        ), bob.everything()
    finally:
        server.stop()


# --------------------------------------------------------------------------- pipes


def messages(client: PipedClient) -> list[str]:
    """The conversation's message lines on stdout (notices left out)."""
    return [line for line in client.out.snapshot() if not re.match(rf"{STAMP} \* ", line)]


def test_a_piped_client_gets_no_replay_unless_it_asks(
    clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        bob = piped(clients, "bob", server.port)
        for text in ("one", "two", "three"):
            bob.send(text)
            bob.out.wait_for(rf"^{STAMP} bob: {text}$")
        bot = piped(clients, "bot", server.port)
        logger = piped(clients, "logger", server.port, "--history", "2")
        bob.send("live")
        for client in (bot, logger):
            client.out.wait_for(rf"^{STAMP} bob: live$")
        assert [line.split("] ", 1)[1] for line in messages(bot)] == ["bob: live"]
        lines = messages(logger)
        assert [line.split("] ", 1)[1] for line in lines] == ["bob: two", "bob: three", "bob: live"]
        # Replayed lines carry their date; a script matching live lines passes them by.
        assert re.fullmatch(rf"{DATED_STAMP} bob: two", lines[0]), lines
        assert re.fullmatch(rf"{DATED_STAMP} bob: three", lines[1]), lines
        assert re.fullmatch(rf"{STAMP} bob: live", lines[2]), lines
        assert not any(re.match(DATE_LINE, line) for line in logger.out.snapshot())
    finally:
        server.stop()


# --------------------------------------------------------------------------- reconnecting


def test_a_reconnection_shows_only_what_was_missed(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    port = free_port()
    path = tmp_path / "h.sqlite3"
    first = ServeProcess("--history", str(path), port=port)
    try:
        alice = join_in(terminal, port)
        bob = piped(clients, "bob", port)
        bob.send("seen before the loss")
        alice.wait_screen(rf"^{STAMP} bob: seen before the loss$")
    finally:
        first.stop(signal.SIGKILL)
    alice.wait_screen(rf"^{STAMP} \* connection to 127\.0\.0\.1:{port} lost; reconnecting in")
    # Said while alice was away. No server runs meanwhile: her attempts fail until one does.
    write_history(path, ["missed one", "missed two"], time.time() - 2, name="bob")
    second = ServeProcess("--history", str(path), port=port)
    try:
        alice.wait_screen(
            rf"^{STAMP} \* reconnected to chatctl \S+ as alice in #lobby; .*\n"
            rf"{STAMP} bob: missed one\n{STAMP} bob: missed two$",
            timeout=20,
        )
        carol = piped(clients, "carol", port)
        carol.send("after the return")
        alice.wait_screen(rf"^{STAMP} carol: after the return$")
        screen = alice.screen()
        for text in ("seen before the loss", "missed one", "missed two"):
            assert screen.count(text) == 1, alice.show()
        assert fully_dim(styled_row(alice, "missed one"))
        assert fully_dim(styled_row(alice, "missed two"))
        assert not fully_dim(styled_row(alice, "seen before the loss"))
    finally:
        second.stop(signal.SIGKILL)
