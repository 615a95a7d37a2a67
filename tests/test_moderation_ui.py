"""Moderation as a teacher and students do it: real ``chatctl serve --op`` and ``chatctl
join`` in tmux panes and pipes."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    STAMP,
    PipedClient,
    ServeProcess,
    Terminal,
    chatctl_command,
    join_in,
    run_chatctl,
    serve_process,
    tmux_terminal,
)


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[ServeProcess]:
    with serve_process("--history", str(tmp_path / "h.sqlite3"), "--op", "teacher") as serve:
        yield serve


@pytest.fixture
def panes() -> Iterator[list[Terminal]]:
    with tmux_terminal() as a, tmux_terminal() as b:
        yield [a, b]


def enter(term: Terminal, line: str) -> None:
    term.type(line)
    term.keys("Enter")


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def piped(stack: contextlib.ExitStack, name: str, port: int) -> PipedClient:
    """A piped ``chatctl join NAME``, killed (its pipes closed) when the test ends."""
    client = PipedClient(name, port)
    stack.callback(client.kill)
    return client.joined()


def test_a_teacher_sets_the_topic_mutes_and_kicks(
    classroom: ServeProcess, panes: list[Terminal], stack: contextlib.ExitStack
) -> None:
    teacher = join_in(panes[0], classroom.port, "teacher")
    classroom.log.wait_for(r"server operators: teacher")
    ann = join_in(panes[1], classroom.port, "ann")
    ben = piped(stack, "ben", classroom.port)

    enter(ann, "/kick ben")  # a student is no operator: refused, and nothing happens
    ann.wait_screen(rf"^{STAMP} \* error: only an operator of #lobby can do that \(not_operator\)$")

    enter(teacher, "/topic fractions, page 12")
    teacher.wait_screen(rf"^{STAMP} \* teacher set the topic: fractions, page 12$")
    ann.wait_screen(rf"^{STAMP} \* teacher set the topic: fractions, page 12$")
    enter(ann, "/topic")
    ann.wait_screen(rf"^{STAMP} \* topic of #lobby: fractions, page 12$")

    late = run_chatctl("join", "late", "--port", str(classroom.port), input="")
    assert "in #lobby; online: teacher, ann, ben. Topic: fractions, page 12" in late.stderr
    enter(teacher, "/mute ann 5m flooding")
    ann.wait_screen(rf"^{STAMP} \* teacher muted ann for 5 minutes \(flooding\)$")
    enter(ann, "lalalala")
    ann.wait_screen(
        rf"^{STAMP} \* error: you are muted in #lobby for 5 minutes more: your line was not sent"
    )

    table = run_chatctl("status", "--port", str(classroom.port), COLUMNS="200")
    assert "#lobby 3 in, 0 messages (fractions, page 12) muted: ann" in table.stdout, table.stdout
    enter(teacher, "/who")
    teacher.wait_screen(rf"^{STAMP} \* in #lobby: @teacher, ann, ben$")

    enter(teacher, "/kick ben rude")
    ben.wait_for_anywhere(re.compile(r"\* teacher kicked ben \(rude\)"))
    ben.wait_for_anywhere(re.compile(r"you are out of #lobby: /join #lobby to go back"))
    ann.wait_screen(rf"^{STAMP} \* teacher kicked ben \(rude\)$")

    enter(teacher, "/unmute ann")
    ann.wait_screen(rf"^{STAMP} \* teacher unmuted ann$")
    enter(ann, "sorry")
    teacher.wait_screen(rf"^{STAMP} ann: sorry$")
    assert "lalalala" not in teacher.show()

    result = run_chatctl("status", "--port", str(classroom.port), "--json")
    server = json.loads(result.stdout)["server"]
    assert server["operators"] == ["teacher"]
    assert [m["event"] for m in server["moderation"]] == ["topic", "mute", "kick", "unmute"]
    (lobby,) = [r for r in server["rooms"] if r["name"] == "#lobby"]
    assert lobby["topic"] == "fractions, page 12"
    for line in ("teacher set the topic", "teacher muted ann", "teacher kicked ben"):
        assert line in classroom.log.text()
    ben.close_stdin()
    assert ben.wait() == 0


def test_the_ops_file_is_read_again_on_sighup(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    ops.write_text("ada\n")
    args = ("--history", str(tmp_path / "h.sqlite3"), "--ops-file", str(ops))
    with serve_process(*args) as serve:
        serve.log.wait_for(r"server operators: ada$")
        ops.write_text("ada\ngrace\n")
        serve.proc.send_signal(signal.SIGHUP)
        serve.log.wait_for(r"server operators: ada, grace$")
        ops.write_text("not a name!\n")
        serve.proc.send_signal(signal.SIGHUP)
        serve.log.wait_for(r"operators unchanged: .*ops, line 1: names are")
        status = json.loads(run_chatctl("status", "--port", str(serve.port), "--json").stdout)
        assert status["server"]["operators"] == ["ada", "grace"]


def test_operator_commands_need_their_arguments(
    classroom: ServeProcess, panes: list[Terminal]
) -> None:
    """A command typed wrong is said locally and never sent."""
    teacher = join_in(panes[0], classroom.port, "teacher")
    for typed, usage in (
        ("/kick", "/kick NAME [REASON]"),
        ("/mute", "/mute NAME [DURATION] [REASON]"),
        ("/op", "/op NAME"),
    ):
        enter(teacher, typed)
        teacher.wait_screen(rf"^{STAMP} \* usage: {re.escape(usage)}$")
    enter(teacher, "/kick nobody")
    teacher.wait_screen(r"nobody called nobody is in #lobby \(no_such_user\)$")


def test_the_classroom(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    """The issue's "done when": a teacher mutes a flooding student, kicks another, bans a
    third for 10 minutes (who cannot come back under another name from the same address),
    sets a topic, moderates the room and voices raised hands one by one, with a projector
    pane showing the room; every action in the room and in history."""
    path = tmp_path / "h.sqlite3"
    # --limit-loopback: here every "machine" is 127.0.0.1, and its address is banned too.
    args = ("--history", str(path), "--op", "teacher", "--limit-loopback")
    with (
        serve_process(*args) as serve,
        tmux_terminal() as t1,
        tmux_terminal() as t2,
        tmux_terminal() as t3,
    ):
        teacher = join_in(t1, serve.port, "teacher")
        screen = t2
        screen.start(*chatctl_command(), "join", "screen", "--port", str(serve.port), "--read-only")
        screen.wait_screen(r"^read-only: q or Ctrl-C closes it$")
        ann = join_in(t3, serve.port, "ann")
        ben = piped(stack, "ben", serve.port)
        cy = piped(stack, "cy", serve.port)

        enter(teacher, "/topic fractions, page 12")
        screen.wait_screen(rf"^{STAMP} \* teacher set the topic: fractions, page 12$")
        for i in range(3):
            enter(ann, f"spam {i}")
        teacher.wait_screen(rf"^{STAMP} ann: spam 2$")
        enter(teacher, "/mute ann 10m flooding")
        ann.wait_screen(rf"^{STAMP} \* teacher muted ann for 10 minutes \(flooding\)$")
        enter(ann, "spam 3")
        ann.wait_screen(r"\* error: you are muted in #lobby for 10 minutes more")
        enter(teacher, "/kick ben rude")
        ben.out.wait_for(r"\* teacher kicked ben \(rude\)")
        enter(teacher, "/ban cy 10m cheating")
        cy.out.wait_for(r"\* teacher banned cy for 10 minutes \(cheating\)")
        again = run_chatctl("join", "cy2", "--port", str(serve.port), input="hello\n")
        assert again.returncode == 17, again.stderr
        assert "you are banned from #lobby for 10 minutes more (by teacher: cheating)" in (
            again.stderr
        )

        enter(teacher, "/unmute ann")
        enter(teacher, "/moderate")
        ann.wait_screen(rf"^{STAMP} \* teacher moderated the room$")
        enter(ann, "me me me")
        ann.wait_screen(r"\* error: #lobby is moderated: only operators and those they voice")
        enter(ann, "/hand")
        ann.wait_screen(r"your hand is up \(number 1\) in #lobby")
        teacher.wait_screen(rf"^{STAMP} \* ann raised a hand \(number 1\)$")
        enter(teacher, "/hands")
        teacher.wait_screen(rf"^{STAMP} \* hands up in #lobby: 1\. ann$")
        enter(teacher, "/voice")
        ann.wait_screen(rf"^{STAMP} \* teacher gave ann a voice$")
        enter(ann, "one half")
        screen.wait_screen(rf"^{STAMP} ann: one half$")
        assert "spam 3" not in screen.show()
        assert "me me me" not in screen.show()
        for shown in ("muted ann", "kicked ben", "banned cy", "moderated the room"):
            assert f"* teacher {shown}" in screen.show()

        for student in (ben, cy):
            student.close_stdin()
            student.wait()
        # Out of #lobby, ben's client had a read mark for it still to send: it must not
        # (the server would refuse it: not_in_room).
        assert "not_in_room" not in ben.everything()
        screen.type("typed on the projector")  # not echoed, not sent
        screen.keys("C-c")
        assert screen.exit_status() == 0
        assert "typed on the projector" not in screen.show()
    with sqlite3.connect(path) as db:
        events = [
            row[0] for row in db.execute("SELECT event FROM messages WHERE event IS NOT NULL")
        ]
    assert events == ["topic", "mute", "kick", "ban", "unmute", "moderate", "voice"]


OPERATOR_COMMANDS = [
    "/topic mine now",
    "/kick teacher",
    "/mute teacher",
    "/unmute teacher",
    "/ban teacher",
    "/unban teacher",
    "/bans",
    "/op ann",
    "/deop teacher",
    "/moderate",
    "/unmoderate",
    "/voice ann",
    "/devoice ann",
    "/hands",
]


def test_a_student_tries_every_operator_command_and_nothing_happens(
    tmp_path: Path, panes: list[Terminal]
) -> None:
    # Each refusal is an error frame: past --max-errors (10 in 10 s) the server would
    # close the connection, which is not what this test is about.
    args = ("--history", str(tmp_path / "h.sqlite3"), "--op", "teacher", "--max-errors", "50")
    with serve_process(*args) as classroom:
        _every_command_refused(classroom, panes)


def _every_command_refused(classroom: ServeProcess, panes: list[Terminal]) -> None:
    teacher = join_in(panes[0], classroom.port, "teacher")
    ann = join_in(panes[1], classroom.port, "ann")
    for n, typed in enumerate(OPERATOR_COMMANDS, 1):
        enter(ann, typed)
        ann.wait_for(
            lambda rows, n=n: sum("(not_operator)" in row for row in rows) == n,
            f"{n} refusals after {typed!r}",
        )
    result = run_chatctl("status", "--port", str(classroom.port), "--json")
    server = json.loads(result.stdout)["server"]
    assert "moderation" not in server  # nothing was done
    (lobby,) = [r for r in server["rooms"] if r["name"] == "#lobby"]
    assert set(lobby) == {"name", "members", "messages"}  # no topic, no operators, no mutes
    assert "ann" not in teacher.show().replace("ann joined", "")  # and nobody was told


def test_an_operator_passes_the_room_on_and_lifts_what_it_did(
    classroom: ServeProcess, panes: list[Terminal], stack: contextlib.ExitStack
) -> None:
    teacher = join_in(panes[0], classroom.port, "teacher")
    ann = join_in(panes[1], classroom.port, "ann")
    cy = piped(stack, "cy", classroom.port)
    enter(teacher, "/op ann")
    ann.wait_screen(rf"^{STAMP} \* teacher made ann an operator$")
    enter(ann, "/who")
    ann.wait_screen(rf"^{STAMP} \* in #lobby: @teacher, @ann, cy$")
    enter(ann, "/ban cy 1h")
    cy.out.wait_for(r"\* ann banned cy for 1 hour$")
    enter(ann, "/bans")
    ann.wait_screen(rf"^{STAMP} \* bans in #lobby: cy, 1 hour left, by ann$")
    enter(ann, "/unban cy")
    ann.wait_screen(rf"^{STAMP} \* ann unbanned cy$")
    enter(ann, "/bans")
    ann.wait_screen(rf"^{STAMP} \* bans in #lobby: none$")
    enter(teacher, "/moderate")
    enter(teacher, "/voice ann")
    ann.wait_screen(rf"^{STAMP} \* teacher gave ann a voice$")
    enter(teacher, "/devoice ann")
    ann.wait_screen(rf"^{STAMP} \* teacher took ann's voice away$")
    enter(teacher, "/unmoderate")
    ann.wait_screen(rf"^{STAMP} \* teacher ended the moderation$")
    enter(ann, "/ban -s cy")  # a room operator is no server operator
    ann.wait_screen(r"only a server operator can ban from it \(not_operator\)$")
    enter(teacher, "/deop ann")
    ann.wait_screen(rf"^{STAMP} \* teacher took operator away from ann$")
    enter(ann, "/hand")
    ann.wait_screen(r"#lobby is not moderated: just speak \(invalid_frame\)$")
    enter(teacher, "/ban -s cy 1m spam")
    cy.err.wait_for(r"you are banned from this server \(by teacher: spam\)")
    assert cy.wait() == 17  # banned from the server (out of #lobby already, since the first ban)
