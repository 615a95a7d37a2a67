"""Rooms and slash commands as people use them: real ``chatctl join`` in tmux panes and pipes.

The first test is the issue's "done when": alice and bob in #ops, carol in #lobby,
three terminals, every command once.
"""

from __future__ import annotations

import json
import re
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
    run_chatctl,
    tmux_terminal,
    wait_until,
)


@pytest.fixture
def panes() -> Iterator[list[Terminal]]:
    """Three private tmux panes (one tmux server each)."""
    with tmux_terminal() as a, tmux_terminal() as b, tmux_terminal() as c:
        yield [a, b, c]


def status(serve: ServeProcess) -> dict[str, object]:
    result = run_chatctl("status", "--port", str(serve.port), "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def relayed(serve: ServeProcess) -> int:
    server = status(serve)["server"]
    assert isinstance(server, dict)
    return int(server["messages_relayed"])


def enter(term: Terminal, line: str) -> None:
    term.type(line)
    term.keys("Enter")


def test_three_people_two_rooms_and_every_command(
    serve: ServeProcess, panes: list[Terminal]
) -> None:
    alice = join_in(panes[0], serve.port, "alice", "--room", "ops")
    bob = join_in(panes[1], serve.port, "bob", "--room", "#ops")
    # No history for carol: what she sees of #ops is only what she was there for.
    carol = join_in(panes[2], serve.port, "carol", "--history", "0")
    alice.wait_last(prompt("alice", "#ops"))
    carol.wait_last(prompt("carol", "#lobby"))
    alice.wait_screen(rf"^{STAMP} \* bob joined$")

    enter(alice, "deploy at 10?")
    bob.wait_screen(rf"^{STAMP} alice: deploy at 10\?$")

    enter(carol, "/msg bob are you free at 3?")
    bob.wait_screen(rf"^{STAMP} \[PM from carol\] are you free at 3\?$")
    carol.wait_screen(rf"^{STAMP} \[PM to bob\] are you free at 3\?$")
    enter(bob, "/reply yes")
    carol.wait_screen(rf"^{STAMP} \[PM from bob\] yes$")

    enter(alice, "/me waves")
    bob.wait_screen(rf"^{STAMP} \* alice waves$")
    enter(bob, "/away lunch")
    bob.wait_screen(rf"^{STAMP} \* you are away: lunch$")
    enter(alice, "/who")
    alice.wait_screen(rf"^{STAMP} \* in #ops: @alice, bob \(away: lunch\)$")
    enter(carol, "/rooms")
    carol.wait_screen(rf"^{STAMP} \* rooms: #lobby \(1\), #ops \(2\)$")
    enter(bob, "/nick robert")
    alice.wait_screen(rf"^{STAMP} \* bob is now known as robert$")
    bob.wait_last(prompt("robert", "#ops"))

    before = relayed(serve)
    enter(carol, "/frobnicate the deploy")
    carol.wait_screen(rf"^{STAMP} \* unknown command /frobnicate ")
    enter(carol, "/join ops")
    alice.wait_screen(rf"^{STAMP} \* carol joined$")
    carol.wait_last(prompt("carol", "#ops"))
    enter(carol, "hello ops")
    alice.wait_screen(rf"^{STAMP} carol: hello ops$")
    assert relayed(serve) == before + 1  # the unknown command sent nothing at all

    # carol never saw what was said in #ops before she came, nor the private lines.
    seen_by_carol = carol.screen()
    assert "deploy at 10" not in seen_by_carol, carol.show()
    assert "waves" not in seen_by_carol, carol.show()
    assert "frobnicate the deploy" not in alice.screen() + bob.screen()
    # alice never saw the private messages between carol and bob.
    assert "free at 3" not in alice.screen(), alice.show()
    users = {u["name"]: u for u in status(serve)["users"]}  # type: ignore[attr-defined]
    assert users["carol"]["rooms"] == ["#lobby", "#ops"]
    assert users["robert"]["away"] == "lunch"


def test_lines_show_their_room_and_alt_number_switches(
    serve: ServeProcess, panes: list[Terminal]
) -> None:
    alice = join_in(panes[0], serve.port, "alice", "--room", "ops", "--room", "lobby")
    alice.wait_last(prompt("alice", "#ops"))
    bot = PipedClient("bot", serve.port, "--room", "lobby").joined()
    try:
        bot.send("from the lobby")
        alice.wait_screen(rf"^{STAMP} #lobby bot: from the lobby$")  # two rooms: named
        alice.keys("Escape", "2")
        alice.wait_last(prompt("alice", "#lobby"))
        enter(alice, "back to you")
        bot.out.wait_for(rf"^{STAMP} alice: back to you$")
        alice.keys("Escape", "1")
        alice.wait_last(prompt("alice", "#ops"))
        enter(alice, "/switch lobby")
        alice.wait_last(prompt("alice", "#lobby"))
        enter(alice, "/part")
        alice.wait_screen(rf"^{STAMP} \* you left #lobby$")
        alice.wait_last(prompt("alice", "#ops"))
    finally:
        bot.kill()


def test_tab_completes_commands_and_names(serve: ServeProcess, panes: list[Terminal]) -> None:
    alice = join_in(panes[0], serve.port, "alice")
    bot = PipedClient("robertson", serve.port).joined()
    try:
        alice.wait_screen(rf"^{STAMP} \* robertson joined$")
        alice.type("/sea")
        alice.keys("Tab")
        alice.wait_last(prompt("alice") + " /search")
        alice.keys("C-c")
        alice.type("hi rob")
        alice.keys("Tab")
        alice.wait_last(prompt("alice") + " hi robertson")
        alice.keys("Enter")
        bot.out.wait_for(rf"^{STAMP} alice: hi robertson$")
    finally:
        bot.kill()


def test_a_mention_is_highlighted_and_rings_the_bell(
    serve: ServeProcess, panes: list[Terminal], tmp_path: Path
) -> None:
    alice = join_in(panes[0], serve.port, "alice")
    alice.watch_bells(tmp_path / "bells")
    bot = PipedClient("bot", serve.port).joined()
    try:
        alice.wait_screen(rf"^{STAMP} \* bot joined$")
        bot.send("nothing for anyone")
        alice.wait_screen(rf"^{STAMP} bot: nothing for anyone$")
        assert alice.bells() == 0
        bot.send("ALICE, look at this")
        alice.wait_screen(rf"^{STAMP} bot: ALICE, look at this$")
        wait_until(lambda: alice.bells() == 1, 5, "one bell")
        rows = alice.styled().splitlines()
        marked = next(row for row in rows if "look at this" in row)
        assert "\x1b[1;7m\x1b[33mALICE, look at this" in marked, repr(marked)  # bold reverse
        plain = next(row for row in rows if "nothing for anyone" in row)
        assert "7m" not in plain, repr(plain)
        enter(alice, "alice talking to herself")  # one's own name rings nothing
        alice.wait_screen(rf"^{STAMP} alice: alice talking to herself$")
        bot.send("unrelated")
        alice.wait_screen(rf"^{STAMP} bot: unrelated$")
        assert alice.bells() == 1
    finally:
        bot.kill()


def test_no_bell_silences_mentions(
    serve: ServeProcess, panes: list[Terminal], tmp_path: Path
) -> None:
    alice = join_in(panes[0], serve.port, "alice", "--no-bell")
    alice.watch_bells(tmp_path / "bells")
    bot = PipedClient("bot", serve.port, "--commands").joined()
    try:
        bot.send("/msg alice a private word")
        alice.wait_screen(rf"^{STAMP} \[PM from bot\] a private word$")
        bot.send("alice: and a mention")
        alice.wait_screen(rf"^{STAMP} bot: alice: and a mention$")
        enter(alice, "marker")
        alice.wait_screen(rf"^{STAMP} alice: marker$")
        assert alice.bells() == 0
    finally:
        bot.kill()


# --------------------------------------------------------------------------- pipes


def test_piped_lines_are_text_unless_commands_is_given(serve: ServeProcess) -> None:
    reader = PipedClient("reader", serve.port, "--room", "ops", "--room", "lobby").joined()
    try:
        plain = run_chatctl(
            "join", "logger", "--port", str(serve.port), input="/join #ops\n/quit now\n"
        )
        assert plain.returncode == 0, plain.stderr
        reader.out.wait_for(rf"^{STAMP} #lobby logger: /join #ops$")  # text, in the lobby
        reader.out.wait_for(rf"^{STAMP} #lobby logger: /quit now$")
        bot = run_chatctl(
            "join",
            "bot",
            "--port",
            str(serve.port),
            "--commands",
            input="/join ops\ndeployed 2.3\n/msg reader done\n/frobnicate\n/me leaves\n",
        )
        assert bot.returncode == 0, bot.stderr
        reader.out.wait_for(rf"^{STAMP} #ops bot: deployed 2\.3$")
        reader.out.wait_for(rf"^{STAMP} \[PM from bot\] done$")
        reader.out.wait_for(rf"^{STAMP} #ops \* bot leaves$")
        assert "unknown command /frobnicate" in bot.stderr
        assert "frobnicate" not in reader.out.text()
        assert re.search(rf"{STAMP} #ops bot: deployed 2\.3", bot.stdout)  # its own echo
    finally:
        reader.kill()


def test_room_on_the_command_line_works_piped(serve: ServeProcess) -> None:
    reader = PipedClient("reader", serve.port, "--room", "ops").joined()
    try:
        sent = run_chatctl("join", "ci", "--port", str(serve.port), "--room", "OPS", input="ok\n")
        assert sent.returncode == 0, sent.stderr
        assert "as ci in #ops;" in sent.stderr
        reader.out.wait_for(rf"^{STAMP} ci: ok$")
        bad = run_chatctl("join", "ci", "--port", str(serve.port), "--room", "no spaces", input="")
        assert bad.returncode == 2
        assert "rooms are" in bad.stderr
    finally:
        reader.kill()


def test_whois_says_where_someone_is(serve: ServeProcess) -> None:
    reader = PipedClient("reader", serve.port, "--room", "ops", "--room", "lobby").joined()
    try:
        asker = run_chatctl(
            "join",
            "asker",
            "--port",
            str(serve.port),
            "--commands",
            input="/whois reader\n/whois nobody\n",
        )
        assert asker.returncode == 0, asker.stderr
        assert re.search(rf"{STAMP} \* reader is online, in #ops, #lobby", asker.stdout)
        assert "nobody of that name is online" in asker.stdout + asker.stderr
    finally:
        reader.kill()
