"""The IRC door with WeeChat, on its defaults, in tmux: typed at as a person would.

WeeChat (``alice``, its own fresh home) and a piped ``chatctl join bob`` talk in #lobby
through one real ``chatctl serve --irc``: messages both ways, an action, private
messages both ways, a nick change and a quit, and nothing from the server in WeeChat's
server buffer (or its log of it) that reads as an error. One command per send-keys, and
each step waits for its effect: several lines at once make WeeChat ask "Paste N lines?".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ircclients import client_pane, enter, error_texts, irc_port
from tests.support import STAMP, PipedClient, Terminal, serve_process, wait_until

pytestmark = pytest.mark.timeout(120)

#: What WeeChat shows for the door's error numerics (WeeChat's words or the door's), and
#: for ERROR lines (WeeChat shows a numeric's text, not its number: ``\b4\d\d\b`` is for one
#: it shows raw). 422 "MOTD File is missing" is not one: every login says it.
ERROR_TEXTS = error_texts(r"|\b4\d\d\b")


@pytest.fixture
def weechat_pane() -> Iterator[Terminal]:
    with client_pane("weechat", "Debian: weechat-curses, tmux") as term:
        yield term


def bar(number: int, name: str) -> str:
    """WeeChat's status bar with buffer ``number`` current: ``[03:41] [3] [irc/chatctl]
    2:#lobby(+nt){2}`` (the last buffer's number, then number:name)."""
    return rf"^\s*│?\[\d\d:\d\d\] \[\d+\] \[irc/chatctl\] {number}:{re.escape(name)}\b"


def buffer(term: Terminal, number: int, name: str) -> str:
    """Switch WeeChat to buffer ``number`` (called ``name`` in the status bar); the screen."""
    enter(term, f"/buffer {number}")
    term.wait_screen(bar(number, name), timeout=5)
    return term.screen()


def test_weechat_and_a_piped_client_talk_through_the_door(
    weechat_pane: Terminal, tmp_path: Path
) -> None:
    with serve_process("--irc", "127.0.0.1:0", "--no-history") as server:
        port = irc_port(server)
        home = tmp_path / "weechat"
        home.mkdir()
        term = weechat_pane
        # sh runs it as `env TERM=xterm-256color ... env TERM=screen weechat`: the last wins.
        # The logger (on by default) writes each line at once, to read the server buffer back.
        commands = (
            "/set logger.file.flush_delay 0"
            f"; /server add chatctl 127.0.0.1/{port} -notls -nicks=alice"
            "; /connect chatctl"
        )
        term.start("env", "TERM=screen", "weechat", "--dir", str(home), "-r", commands)
        term.wait_screen(r"-- \| Welcome to the chatctl IRC door, alice$", timeout=15)
        term.wait_screen(r"-- \| MOTD File is missing$")  # the end of the welcome

        enter(term, "/join #lobby")
        term.wait_screen(r"--> \| alice \(\S+\) has joined #lobby\s")
        term.wait_screen(bar(2, "#lobby"))
        server.log.wait_for(r"alice joined #lobby$")

        bob = PipedClient("bob", server.port, "--commands")
        try:
            bob.joined()
            bob.err.wait_for(r"joined chatctl .* as bob in #lobby; online: alice\.$")
            term.wait_screen(r"--> \| bob \(\S+\) has joined #lobby\s")

            # A line typed in WeeChat reaches bob; bob's line reaches WeeChat's #lobby.
            enter(term, "hello from weechat")
            bob.out.wait_for(rf"^{STAMP} alice: hello from weechat$")
            bob.send("hi alice, from the pipe")
            term.wait_screen(r" bob \| hi alice, from the pipe\s")
            term.wait_screen(r"@?alice \| hello from weechat\s")

            enter(term, "/me waves")
            bob.out.wait_for(rf"^{STAMP} \* alice waves$")
            term.wait_screen(r" \* \| @?alice waves\s")

            # WeeChat's /msg reaches bob as a private message (not a line in #lobby)...
            enter(term, "/msg bob secret")
            bob.out.wait_for(rf"^{STAMP} \[PM from alice\] secret$")
            assert not [line for line in bob.out.snapshot() if re.search(r"alice: secret", line)]

            # ...and bob's opens a private buffer in WeeChat, buffer 3, with the line in it.
            bob.send("/msg alice psst")
            bob.out.wait_for(rf"^{STAMP} \[PM to alice\] psst$")
            term.wait_screen(r"\[H: (?:\S+,)*3:bob\b")  # the hotlist: a private message
            query = buffer(term, 3, "bob")
            assert re.search(r" bob \| psst\s", query), query
            assert " bob | psst" not in buffer(term, 2, "#lobby")  # not in the channel

            enter(term, "/nick alicia")
            bob.out.wait_for(rf"^{STAMP} \* alice is now known as alicia$")
            term.wait_screen(r"-- \| You are now known as alicia\s")
            term.wait_screen(r"^\s*│?\[@?alicia\]")  # the input bar has the new nick

            # Nothing went wrong on the way. WeeChat sends its commands in order and the
            # door answers them in order: once this PING is answered, so is all before it.
            enter(term, "/quote PING weechat-test-end")
            log = home / "logs" / "irc.server.chatctl.weechatlog"
            wait_until(lambda: "weechat-test-end" in read(log), what=f"the PONG in {log}")
            status = buffer(term, 1, "server")
            assert re.search(r"^.*chatctl\s+\| PONG: weechat-test-end\s*$", status, re.M), status
            bad = [line for line in status.splitlines() if ERROR_TEXTS.search(line)]
            assert not bad, "\n".join(bad)
            logged = read(log)
            assert "Welcome to the chatctl IRC door, alice" in logged, logged
            bad = [line for line in logged.splitlines() if ERROR_TEXTS.search(line)]
            assert not bad, "\n".join(bad)

            enter(term, "/quit")
            assert term.exit_status() == 0
            bob.out.wait_for(rf"^{STAMP} \* alicia left$")
            server.log.wait_for(r"- alicia left \(quit\) from 127\.0\.0\.1:\d+$")

            bob.close_stdin()
            assert bob.wait() == 0, bob.everything()
            assert "Traceback" not in bob.everything() + server.log.text()
        finally:
            bob.kill()


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
