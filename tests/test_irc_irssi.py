"""The IRC door with a real IRC client: irssi in tmux, typed at as a person would.

irssi (``alice``) and a piped ``chatctl join bob`` talk in #lobby through one real
``chatctl serve --irc``: messages both ways, an action, private messages both ways, a
nick change, a part, a rejoin and a quit, and nothing in irssi that reads as an error.
irssi paces its own commands (a burst of five, then one every 2.2 s), so each step
waits for what it did before the next one is typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ircclients import client_pane, enter, error_texts, irc_port
from tests.support import STAMP, PipedClient, Terminal, serve_process, wait_until

pytestmark = pytest.mark.timeout(180)

#: What irssi shows for the door's error numerics (irssi's own words or the door's), and
#: for ERROR lines. 422 "MOTD File is missing" is not one: every login says it.
ERROR_TEXTS = error_texts()
#: A line from the server in irssi's raw log (``>>``; ``<<`` is what irssi sent), and the
#: numeric in it if it is one: ``>> :chatctl 421 alice ...``.
RAW_IN = re.compile(r"^>> (?:@\S+ )?(?::\S+ )?(\S+)")


@pytest.fixture
def irssi_pane() -> Iterator[Terminal]:
    with client_pane("irssi", "CI installs irssi from Debian") as term:
        yield term


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def bar(number: int, item: str) -> str:
    """irssi's status bar showing window ``number``: ``[2:127/#lobby]`` (refnum, server tag,
    window item; ``[2:127/#lobby(+nt)]`` once the channel is synced), ``[1:127 (change
    with ^X)]`` for the status window."""
    return rf"^ \[\d\d:\d\d\] .*\[{number}:\S+{re.escape(item)}(?:\(\+\w*\))?\]"


def window(term: Terminal, number: int, item: str) -> str:
    """Switch irssi to window ``number`` (``item``: as in ``bar``) and return the screen."""
    enter(term, f"/window {number}")
    term.wait_screen(bar(number, item), timeout=5)
    return term.screen()


def test_irssi_and_a_piped_client_talk_through_the_door(
    irssi_pane: Terminal, tmp_path: Path
) -> None:
    with serve_process("--irc", "127.0.0.1:0", "--no-history") as server:
        port = irc_port(server)
        home = tmp_path / "irssi"
        home.mkdir()
        term = irssi_pane
        # sh runs it as `env TERM=xterm-256color ... env TERM=screen irssi`: the last wins.
        term.start(
            "env", "TERM=screen", "irssi", f"--home={home}",
            "-c", "127.0.0.1", "-p", str(port), "-n", "alice",
        )  # fmt: skip
        term.wait_screen(r"-!- Welcome to the chatctl IRC door, alice$", timeout=15)
        term.wait_screen(r"-!- MOTD File is missing$")  # the end of the welcome

        enter(term, "/join #lobby")
        term.wait_screen(r"-!- alice \[\S+\] has joined #lobby$")
        term.wait_screen(bar(2, "/#lobby"))
        server.log.wait_for(r"alice joined #lobby$")

        bob = PipedClient("bob", server.port, "--commands")
        try:
            bob.joined()
            bob.err.wait_for(r"joined chatctl .* as bob in #lobby; online: alice\.$")
            term.wait_screen(r"-!- bob \[\S+\] has joined #lobby$")

            # A line typed in irssi reaches bob; bob's line reaches irssi.
            enter(term, "hello from irssi")
            bob.out.wait_for(rf"^{STAMP} alice: hello from irssi$")
            bob.send("hi alice, from the pipe")
            term.wait_screen(r"< bob> hi alice, from the pipe$")
            term.wait_screen(r"<@?alice> hello from irssi$")  # irssi shows its own line once

            enter(term, "/me waves")
            bob.out.wait_for(rf"^{STAMP} \* alice waves$")
            term.wait_screen(r"^\d\d:\d\d  \* alice waves$")

            # bob's private message opens a query window in irssi: window 3, with activity.
            bob.send("/msg alice psst")
            bob.out.wait_for(rf"^{STAMP} \[PM to alice\] psst$")
            term.wait_screen(r"\[Act: (?:\d+,)*3\b")
            query = window(term, 3, "/bob")
            assert re.search(r"^\d\d:\d\d <bob> psst$", query, re.MULTILINE), query
            assert "< bob> psst" not in window(term, 2, "/#lobby")  # not in the channel

            # ...and irssi's /msg reaches bob as a private message, in that query window.
            enter(term, "/msg bob secret")
            bob.out.wait_for(rf"^{STAMP} \[PM from alice\] secret$")
            window(term, 3, "/bob")
            term.wait_screen(r"^\d\d:\d\d <alice> secret$")
            assert not [line for line in bob.out.snapshot() if re.search(r"alice: secret", line)]

            window(term, 2, "/#lobby")
            enter(term, "/nick alicia")
            bob.out.wait_for(rf"^{STAMP} \* alice is now known as alicia$")
            term.wait_screen(r"-!- You're now known as alicia$")
            term.wait_screen(r"^ \[\d\d:\d\d\] \[@?alicia")  # the status bar has the new nick

            enter(term, "/part #lobby")
            bob.out.wait_for(rf"^{STAMP} \* alicia left #lobby$")
            server.log.wait_for(r"alicia left #lobby$")
            # ...and back, so that her quit is seen in a room bob shares with her.
            enter(term, "/join #lobby")
            bob.out.wait_for(rf"^{STAMP} \* alicia joined$")
            term.wait_screen(r"-!- alicia \[\S+\] has joined #lobby$")
            bob.send("welcome back")
            term.wait_screen(r"< bob> welcome back$")

            # Nothing went wrong on the way: not in the status window, not in the raw lines.
            window(term, 1, " (change with ^X)")
            # irssi sends its commands in order and the door answers them in order: once
            # this PING is answered, so is every command typed before it.
            enter(term, "/quote PING irssi-test-end")
            term.wait_screen(r"-!- PONG received from chatctl: irssi-test-end$")
            status = term.screen()
            assert "-!- Welcome to the chatctl IRC door, alice" in status, status
            bad = [line for line in status.splitlines() if ERROR_TEXTS.search(line)]
            assert not bad, "\n".join(bad)
            raw = tmp_path / "raw.log"
            enter(term, f"/rawlog save {raw}")
            wait_until(lambda: ":irssi-test-end" in read(raw), what=f"the PONG in {raw}")
            got = [
                (m.group(1), line) for line in read(raw).splitlines() if (m := RAW_IN.match(line))
            ]
            commands = [command for command, _ in got]
            assert "001" in commands, got
            # Before 001 the door answers irssi's probe (a bare `JOIN :` sent with CAP LS)
            # with 451, as IRC servers do; irssi shows nothing for it. After it, no error.
            registered = got[commands.index("001") :]
            errors = [(cmd, line) for cmd, line in registered if cmd == "ERROR" or cmd[0] in "45"]
            assert [cmd for cmd, _ in errors] == ["422"], "\n".join(line for _, line in errors)

            enter(term, "/quit")
            assert term.exit_status() == 0
            bob.out.wait_for(rf"^{STAMP} \* alicia left$")
            server.log.wait_for(r"- alicia left \(quit\) from 127\.0\.0\.1:\d+$")

            bob.close_stdin()
            assert bob.wait() == 0, bob.everything()
            assert "Traceback" not in bob.everything() + server.log.text()
        finally:
            bob.kill()
