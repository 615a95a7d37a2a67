"""The issue's scene, in tmux: carol leaves, alice and bob talk, carol comes back and
reads exactly what she missed under "— N new since you left —"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    join_in,
    prompt,
    tmux_terminal,
)

pytestmark = pytest.mark.timeout(60)


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


def test_carol_comes_back_to_what_she_missed_under_the_divider(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        alice = PipedClient("alice", server.port)
        bob = PipedClient("bob", server.port)
        clients.extend([alice, bob])
        alice.joined()
        bob.joined()
        alice.send("before carol came")
        carol = join_in(terminal, server.port, "carol")
        carol.wait_screen(rf"^{STAMP} alice: before carol came$")
        bob.send("hi carol")
        carol.wait_screen(rf"^{STAMP} bob: hi carol$")
        carol.type("/quit")
        carol.keys("Enter")
        assert carol.exit_status() == 0
        alice.out.wait_for(rf"^{STAMP} \* carol left")

        alice.send("standup moved to 10:30")
        bob.out.wait_for(rf"^{STAMP} alice: standup moved to 10:30$")
        bob.send("ok")
        alice.out.wait_for(rf"^{STAMP} bob: ok$")

        with tmux_terminal() as again:
            carol = join_in(again, server.port, "carol")
            carol.wait_screen(
                rf"^{STAMP} bob: hi carol\n"
                r"— 2 new since you left — #lobby\n"
                rf"{STAMP} alice: standup moved to 10:30\n"
                rf"{STAMP} bob: ok$"
            )
            carol.wait_last(prompt("carol"))
            assert carol.screen().count("new since you left") == 1, carol.show()
    finally:
        server.stop()


def test_slash_history_pages_back_and_unread_lists_rooms(
    terminal: Terminal, clients: list[PipedClient], tmp_path: Path
) -> None:
    server = ServeProcess("--history", str(tmp_path / "h.sqlite3"))
    try:
        bob = PipedClient("bob", server.port)
        clients.append(bob)
        bob.joined()
        for i in range(5):
            bob.send(f"m{i}")
            bob.out.wait_for(rf"^{STAMP} bob: m{i}$")
        alice = join_in(terminal, server.port, "alice", "--history", "2")
        alice.wait_screen(rf"^{STAMP} bob: m3\n{STAMP} bob: m4$")
        alice.wait_last(prompt("alice"))
        alice.type("/history")
        alice.keys("Enter")
        alice.wait_screen(
            rf"^{STAMP} \* 3 older messages of #lobby:\n"
            rf"{STAMP} bob: m0\n{STAMP} bob: m1\n{STAMP} bob: m2$"
        )
        alice.type("/history")
        alice.keys("Enter")
        alice.wait_screen(rf"^{STAMP} \* nothing older in #lobby$")
        alice.type("/unread")
        alice.keys("Enter")
        alice.wait_screen(rf"^{STAMP} \* nothing unread$")
    finally:
        server.stop()
