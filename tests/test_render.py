"""Rendering is inert and stable: pure tests of chatctl.ui.render, status_table and the server log.

Everything is printed through a Rich console that believes it drives a truecolor
terminal, so any escape sequence a hostile string could smuggle in would show up
in the captured output.
"""

from __future__ import annotations

import io
import re
import time

import msgspec
import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text

from chatctl.protocol import (
    AwayState,
    Error,
    HistoryInfo,
    Joined,
    Left,
    MemberInfo,
    Message,
    NickChanged,
    Parted,
    Ping,
    Pong,
    Private,
    RoomInfo,
    RoomsReply,
    RoomState,
    ServerInfo,
    Shutdown,
    StatusReply,
    UserInfo,
    WhoisReply,
    WhoReply,
    clean_frame,
)
from chatctl.server.events import (
    Listening,
    MessageRelayed,
    Refused,
    Renamed,
    RoomEntered,
    RoomParted,
    Stopping,
    UserJoined,
    UserLeft,
)
from chatctl.ui import bench, status
from chatctl.ui.frames import View, render_frame
from chatctl.ui.render import (
    clock,
    mentions,
    message_line,
    name_style,
    notice_line,
    unsent_line,
    welcome_line,
)
from chatctl.ui.serverlog import ServerLog, describe
from chatctl.ui.status import status_table
from chatctl.ui.units import size

TS = 1_700_000_000.25
KIB = 1024
STAMP = r"\[\d{2}:\d{2}:\d{2}\]"
SGR = re.compile(r"\x1b\[[0-9;]*m")

HOSTILE_MARKUP = [
    "[bold red]x[/]",
    "[/]",
    "[link=http://evil]click[/link]",
    "[bold]unclosed",
    "[red]a[/red][/red]",
    ":smile: [i]",
]

HOSTILE_CONTROLS = (
    "clear\x1b[2J"
    " title\x1b]0;pwned\x07"
    " clip\x1b]52;c;ZWNobyBwd25lZA==\x07"
    " report\x1b[6n"
    " csi\x9b31m"
    " bidi\u202eevil"
    " del\x7f nul\x00 end"
)


def console(width: int = 80) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return (
        Console(file=buf, width=width, force_terminal=True, color_system="truecolor"),
        buf,
    )


def rendered(*renderables: object, width: int = 80) -> str:
    con, buf = console(width)
    for r in renderables:
        con.print(r)
    return buf.getvalue()


def assert_inert(output: str) -> None:
    """Nothing but Rich's own SGR colour codes may reach the terminal."""
    rest = SGR.sub("", output)
    for bad in ("\x1b", "\x07", "\x9b", "\x7f", "\x00", "\u202e"):
        assert bad not in rest, f"{bad!r} reached the terminal: {rest!r}"


def plain(output: str) -> str:
    return SGR.sub("", output)


# --------------------------------------------------------------------------- markup


@pytest.mark.parametrize("hostile", HOSTILE_MARKUP)
def test_markup_in_message_text_is_printed_literally(hostile: str) -> None:
    out = rendered(message_line(TS, "alice", hostile))
    assert hostile in plain(out)
    assert "\x1b]8;" not in out  # no OSC 8 hyperlink
    assert_inert(out)


@pytest.mark.parametrize("hostile", HOSTILE_MARKUP)
def test_markup_in_names_and_notices_is_printed_literally(hostile: str) -> None:
    frames = [
        Message(seq=1, time=TS, name=hostile, text="hi"),
        Joined(seq=2, time=TS, name=hostile),
        Left(seq=3, time=TS, name=hostile, reason=hostile),
        Error(code=hostile, message=hostile),
        RoomState(room="#r", seq=0, users=["bob", hostile], online=2, topic=hostile),
        Private(time=TS, name=hostile, to="bob", text=hostile, away=hostile),
        WhoReply(room="#r", users=[MemberInfo(hostile, away=hostile, server=hostile)]),
        WhoisReply(hostile, [hostile], hostile, server=hostile),
        RoomsReply(rooms=[RoomInfo("#r", 1, topic=hostile)]),
        NickChanged(time=TS, name=hostile, new=hostile),
        AwayState(name="bob", text=hostile),
    ]
    for frame in frames:
        line = render_frame(frame, "bob")
        assert line is not None
        out = rendered(line)
        assert hostile in plain(out), (frame, out)
        assert "\x1b]8;" not in out
        assert_inert(out)


def test_link_markup_does_not_become_a_hyperlink() -> None:
    line = message_line(TS, "mallory", "[link=http://evil]click[/link]")
    out = rendered(line)
    assert "\x1b]8;" not in out
    assert "http://evil" in plain(out)
    assert not any(span.style and Style.parse(str(span.style)).link for span in line.spans)


# --------------------------------------------------------------------------- control characters


def hostile_message() -> Message:
    return clean_frame(
        Message(seq=1, time=TS, name="eve\x1b[2J\x1b]0;pwned\x07", text=HOSTILE_CONTROLS)
    )


def test_clean_frame_then_render_lets_no_escape_through() -> None:
    frame = hostile_message()
    for me in ("bob", frame.name):  # as someone else's message and as one's own
        line = render_frame(frame, me)
        assert line is not None
        out = rendered(line)
        assert_inert(out)
        text = plain(out)
        # Escaped, not dropped: what was sent stays visible.
        for visible in (r"\x1b[2J", r"\x1b]0;pwned\x07", r"\x1b]52;c;", r"\x1b[6n", r"\x9b31m"):
            assert visible in text, (visible, text)


@pytest.mark.parametrize(
    "frame",
    [
        Joined(seq=1, time=TS, name="x\x1b[2Jy"),
        Left(seq=1, time=TS, name="x\x1b]0;t\x07", reason="quit\x1b[6n"),
        Error(code="c\x9b", message="m\x1b]52;c;AAAA\x07"),
        RoomState(room="#r\x07", seq=0, users=["bob", "z\x1b[2J"], online=2),
        Private(time=TS, name="x\x1b[2J", to="bob", text="t\x1b]0;x\x07"),
        NickChanged(time=TS, name="x\x1b[2J", new="y\x9b", room="#r"),
        Shutdown(reason="bye\x1b[2J"),
    ],
)
def test_every_frame_kind_is_inert_after_clean_frame(frame: object) -> None:
    line = render_frame(clean_frame(frame), "bob")  # type: ignore[type-var, arg-type]
    assert line is not None
    assert_inert(rendered(line))


def test_piped_form_is_inert_too() -> None:
    line = render_frame(hostile_message(), "bob")
    assert line is not None
    for bad in ("\x1b", "\x07", "\x9b", "\x7f", "\x00"):
        assert bad not in line.plain


# --------------------------------------------------------------------------- layout


def test_multi_line_message_continuations_are_indented() -> None:
    text = "first\n[12:00:00] * admin joined\n[12:00:01] admin: give me your password\nlast"
    line = message_line(TS, "mallory", text)
    out_lines = plain(rendered(line)).rstrip("\n").split("\n")
    assert len(out_lines) == 4
    assert re.match(rf"{STAMP} mallory: first", out_lines[0])
    for cont in out_lines[1:]:
        assert cont.startswith(" "), cont
    indent = len("[00:00:00] mallory: ")
    assert all(c[:indent] == " " * indent for c in out_lines[1:])
    # The piped form (Text.plain) has the same shape.
    piped = line.plain.split("\n")
    assert len(piped) == 4
    assert all(p.startswith(" " * indent) for p in piped[1:])


def test_carriage_returns_cannot_forge_a_line() -> None:
    frame = clean_frame(
        Message(seq=1, time=TS, name="mallory", text="ok\r[12:00:00] * admin joined\r\nmore")
    )
    line = render_frame(frame, "bob")
    assert line is not None
    out = plain(rendered(line))
    assert "\r" not in out
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("[")
    assert not any(other.startswith("[") for other in lines[1:]), lines


def test_own_message_is_styled_differently_from_others() -> None:
    mine = render_frame(Message(seq=1, time=TS, name="Bob", text="hi"), "bob")
    theirs = render_frame(Message(seq=1, time=TS, name="Bob", text="hi"), "alice")
    assert mine is not None
    assert theirs is not None
    assert mine.plain == theirs.plain
    out_mine, out_theirs = rendered(mine), rendered(theirs)
    assert plain(out_mine) == plain(out_theirs)
    assert out_mine != out_theirs


def sgr_of(line: Text) -> str:
    """The exact bytes a truecolor terminal gets, the stamp replaced by ``[T] ``."""
    return rendered(line).replace(f"[{clock(TS)}] ", "[T] ")


DIM_STAMP = "\x1b[2m[T] \x1b[0m"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (message_line(TS, "bob", "hi"), f"{DIM_STAMP}\x1b[1;36mbob\x1b[0m: hi\n"),
        (
            message_line(TS, "bob", "hi", own=True),
            f"{DIM_STAMP}\x1b[1;7;36mbob\x1b[0m: \x1b[3mhi\x1b[0m\n",
        ),
        (
            message_line(TS, "bob", "one\ntwo"),
            f"{DIM_STAMP}\x1b[1;36mbob\x1b[0m: one\n{' ' * 16}two\n",
        ),
        (
            message_line(TS, "bob", "one\ntwo", own=True),
            f"{DIM_STAMP}\x1b[1;7;36mbob\x1b[0m: \x1b[3mone\x1b[0m\n\x1b[3m{' ' * 16}two\x1b[0m\n",
        ),
        # A notice is dim as a whole; a coloured one is its colour, not dimmed too.
        (notice_line(TS, "bob joined"), f"{DIM_STAMP}\x1b[2m* bob joined\x1b[0m\n"),
        (notice_line(TS, "oops", "bold red"), f"{DIM_STAMP}\x1b[1;31m* oops\x1b[0m\n"),
        (
            unsent_line(TS, "lost"),
            f"{DIM_STAMP}\x1b[31m* not sent: \x1b[0m\x1b[31mlost\x1b[0m\n",
        ),
    ],
    ids=["message", "own", "continuation", "own-continuation", "notice", "error", "unsent"],
)
def test_only_the_stamp_is_dim(line: Text, expected: str) -> None:
    assert sgr_of(line) == expected


def test_name_style_is_stable_and_case_insensitive() -> None:
    # Fixed values: a switch to hash() (salted per process) or to case-sensitive
    # colours would change them.
    assert name_style("alice") == "bright_yellow"
    assert name_style("bob") == "cyan"
    for name in ("alice", "bob", "ci", "Some.Body_42", "x"):
        assert name_style(name) == name_style(name.upper()) == name_style(name.lower())
        assert Style.parse(name_style(name)).color is not None
    assert len({name_style(f"user{i}") for i in range(64)}) > 4  # names get different colours


def test_message_colour_follows_the_name() -> None:
    line = message_line(TS, "Alice", "hi")
    styles = [str(span.style) for span in line.spans]
    assert any(name_style("alice") in s for s in styles)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("quit", "bob left"),
        ("dropped", "bob left (connection dropped)"),
        ("frame_too_long", "bob was disconnected (sent an oversized frame)"),
        ("too_many_errors", "bob was disconnected (too many errors)"),
        ("ping_timeout", "bob was disconnected (stopped answering)"),
        ("slow_consumer", "bob was disconnected (too slow to keep up)"),
        ("something_new", "bob left (something_new)"),
    ],
)
def test_left_reasons_render_readably(reason: str, expected: str) -> None:
    line = render_frame(Left(seq=1, time=TS, name="bob", reason=reason), "alice")
    assert line is not None
    assert re.fullmatch(rf"{STAMP} \* {re.escape(expected)}", line.plain), line.plain
    assert "_" not in line.plain.replace("something_new", "")


def test_piped_forms() -> None:
    msg = render_frame(Message(seq=1, time=TS, name="alice", text="hi"), "bob")
    joined = render_frame(Joined(seq=2, time=TS, name="bob"), "alice")
    assert msg is not None
    assert joined is not None
    assert re.fullmatch(rf"{STAMP} alice: hi", msg.plain)
    assert re.fullmatch(rf"{STAMP} \* bob joined", joined.plain)
    hhmmss = time.strftime("%H:%M:%S", time.localtime(TS))
    assert msg.plain == f"[{hhmmss}] alice: hi"
    assert clock(TS) == hhmmss
    # What the terminal shows is the same words.
    assert plain(rendered(msg)) == msg.plain + "\n"


def test_other_frames() -> None:
    shutdown = render_frame(Shutdown(reason="server shutting down"), "bob")
    assert shutdown is not None
    assert re.fullmatch(rf"{STAMP} \* the server is shutting down", shutdown.plain)
    error = render_frame(Error(code="message_too_long", message="too long"), "bob")
    assert error is not None
    assert re.fullmatch(rf"{STAMP} \* error: too long \(message_too_long\)", error.plain)
    lobby = RoomState(room="#lobby", seq=3, users=["alice", "BOB", "ci"], online=3)
    welcome = welcome_line("bob", "chatctl 9", [lobby])
    assert "joined chatctl 9 as bob in #lobby; online: alice, ci." in welcome.plain
    alone = RoomState(room="#ops", seq=0, users=["bob"], online=1)
    assert "nobody else yet" in welcome_line("bob", "s", [alone]).plain
    both = welcome_line("bob", "s", [lobby, alone], hint=False).plain
    assert "as bob in 2 rooms; #lobby: alice, ci; #ops: nobody else yet." in both
    assert "in no room yet" in welcome_line("bob", "s", []).plain
    joined = render_frame(alone, "bob")
    assert joined is not None
    assert "you are in #ops; online: nobody else yet." in joined.plain
    assert render_frame(Ping(), "bob") is None


def test_a_big_rooms_state_counts_the_unnamed() -> None:
    some = RoomState(room="#big", seq=9, users=["a", "b"], online=1500)
    line = render_frame(some, "zed")
    assert line is not None
    assert "online: a, b and 1497 more." in line.plain
    none = RoomState(room="#big", seq=9, users=[], online=1500)
    line = render_frame(none, "zed")
    assert line is not None
    assert "online: 1499 others." in line.plain
    complete = RoomState(room="#big", seq=9, users=["a", "zed"], online=2)
    line = render_frame(complete, "zed")
    assert line is not None
    assert "online: a." in line.plain
    assert render_frame(Pong(), "bob") is None


def test_notice_line_keeps_text_literal() -> None:
    line = notice_line(TS, "[bold]x[/] \x1b", "bold red")
    assert line.plain.endswith("* [bold]x[/] \x1b")  # clean_frame is the escaping layer
    assert isinstance(line, Text)


# --------------------------------------------------------------------------- status table


def status_reply(*names: str) -> StatusReply:
    info = ServerInfo(
        version="0.1.0",
        protocol=1,
        started_at=TS,
        uptime_seconds=3725.0,
        users=len(names),
        connections=len(names),
        messages_relayed=7,
        leave_reasons={"quit": 2, "[bold]x[/]": 1},
    )
    users = [
        UserInfo(
            name=n,
            address="127.0.0.1:5555",
            connected_at=TS,
            idle_seconds=61.0,
            messages_sent=3,
            bytes_queued=2048,
        )
        for n in names
    ]
    return StatusReply(server=info, users=users)


def test_status_table_prints_hostile_names_literally() -> None:
    names = ["[bold red]x[/]", "[/]", "[link=http://evil]ev[/link]"]
    out = rendered(status_table(status_reply(*names)), width=200)
    text = plain(out)
    for n in names:
        assert n in text, text
    assert "[bold]x[/] 1" in text  # leave reasons too
    assert "\x1b]8;" not in out
    assert_inert(out)
    assert "up 1h02m" in text
    assert "2.0 KiB" in text
    assert "1m01s" in text


def test_status_table_after_clean_frame_is_inert() -> None:
    reply = clean_frame(status_reply("a\x1b[2J", "b\x1b]0;pwned\x07", "c\x9b6n"))
    out = rendered(status_table(reply))
    assert_inert(out)
    assert r"a\x1b[2J" in plain(out)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (2048.0, "2.0 KiB"), (1536 * KIB, "1.5 MiB")],
)
def test_one_byte_size_format_for_status_and_bench(n: float, text: str) -> None:
    assert size(n) == text
    assert status.size is bench.size is size  # one helper, not a copy each


def test_status_table_with_nobody() -> None:
    assert "nobody is connected" in plain(rendered(status_table(status_reply())))


def test_status_table_stops_at_its_rows_and_says_how_many_more() -> None:
    reply = status_reply(*(f"user{n}" for n in range(5)))
    text = plain(rendered(status_table(reply, rows=3), width=200))
    assert "user2" in text
    assert "user3" not in text
    assert "and 2 more: --all lists everyone" in text
    everyone = plain(rendered(status_table(reply), width=200))
    assert "user4" in everyone
    assert "more:" not in everyone


# --------------------------------------------------------------------------- server log


@pytest.mark.parametrize(
    ("event", "text", "style"),
    [
        (
            Listening([("127.0.0.1", 5000)]),
            "listening on 127.0.0.1:5000 (this machine only)",
            "bold green",
        ),
        (
            Listening([("::1", 5000), ("localhost", 5001)]),
            "listening on ::1:5000, localhost:5001 (this machine only)",
            "bold green",
        ),
        (
            Listening([("0.0.0.0", 5000)]),
            "listening on 0.0.0.0:5000: open to the network",
            "bold yellow",
        ),
        (
            Listening([("127.0.0.1", 5000), ("192.168.1.2", 5000)]),
            "listening on 127.0.0.1:5000, 192.168.1.2:5000: open to the network",
            "bold yellow",
        ),
        (UserJoined("bob", "127.0.0.1:4242"), "+ bob joined from 127.0.0.1:4242", "green"),
        (UserLeft("bob", "127.0.0.1:4242", "quit"), "- bob left (quit) from 127.0.0.1:4242", "dim"),
        (
            UserLeft("bob", "127.0.0.1:4242", "shutdown"),
            "- bob left (shutdown) from 127.0.0.1:4242",
            "dim",
        ),
        (
            UserLeft("bob", "127.0.0.1:4242", "dropped"),
            "- bob left (dropped) from 127.0.0.1:4242",
            "yellow",
        ),
        (
            UserLeft("bob", "127.0.0.1:4242", "slow_consumer"),
            "- bob left (slow_consumer) from 127.0.0.1:4242",
            "yellow",
        ),
        (Refused("127.0.0.1:4242", "name_taken"), "refused 127.0.0.1:4242: name_taken", "yellow"),
        (MessageRelayed("alice", "hi"), "#lobby alice: hi", ""),
        (MessageRelayed("alice", "a\nb", "#ops"), "#ops alice: a\n    b", ""),
        (MessageRelayed("alice", "waves", "#ops", action=True), "#ops * alice waves", ""),
        (RoomEntered("alice", "#ops", created=True), "  alice joined #ops (new room)", "dim"),
        (RoomParted("alice", "#ops"), "  alice left #ops", "dim"),
        (Renamed("alice", "alicia"), "  alice is now alicia", "dim"),
        (Stopping(users=2), "shutting down, 2 users notified", "bold yellow"),
    ],
)
def test_describe(event: object, text: str, style: str) -> None:
    assert describe(event) == (text, style)  # type: ignore[arg-type]


def test_server_log_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    log = ServerLog(out, terminal=False)
    log(UserJoined("bob", "127.0.0.1:4242"))
    log(MessageRelayed("alice", "one\ntwo"))
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+ bob joined from 127\.0\.0\.1:4242", lines[0]
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} #lobby alice: one", lines[1])
    assert lines[2] == "    two"
    assert "\x1b" not in out.getvalue()


def test_server_log_on_a_terminal_is_coloured_and_literal() -> None:
    out = io.StringIO()
    log = ServerLog(out, terminal=True)
    log.console = Console(file=out, width=80, force_terminal=True, color_system="truecolor")
    log(MessageRelayed("alice", "[link=http://evil]x[/link] [/]"))
    value = out.getvalue()
    assert "\x1b[" in value
    assert "[link=http://evil]x[/link] [/]" in plain(value)
    assert "\x1b]8;" not in value


# --------------------------------------------------------------------------- rooms, PMs


def test_lines_name_their_room_only_when_you_are_in_several() -> None:
    frame = Message(seq=1, time=TS, name="bob", text="hi", room="#ops")
    one = render_frame(frame, View("alice"))
    several = render_frame(frame, View("alice", multi_room=True))
    assert one is not None
    assert several is not None
    assert re.fullmatch(rf"{STAMP} bob: hi", one.plain)
    assert re.fullmatch(rf"{STAMP} #ops bob: hi", several.plain)
    notice = render_frame(Joined(seq=2, time=TS, name="bob", room="#ops"), View("a", True))
    assert notice is not None
    assert re.fullmatch(rf"{STAMP} #ops \* bob joined", notice.plain)


def test_your_own_join_is_not_shown_twice() -> None:
    """The room's state already said "you are in #ops"; the join that follows is silent."""
    assert render_frame(Joined(seq=1, time=TS, name="Alice", room="#ops"), "alice") is None
    assert render_frame(Joined(seq=1, time=TS, name="bob", room="#ops"), "alice") is not None


def test_actions_parts_nicks_and_private_messages() -> None:
    cases = [
        (Message(1, TS, "bob", "waves", "#ops", action=True), "alice", r"\* bob waves"),
        (Parted(time=TS, name="bob", room="#ops"), "alice", r"\* bob left #ops"),
        (Parted(time=TS, name="alice", room="#ops"), "alice", r"\* you left #ops"),
        (NickChanged(time=TS, name="bob", new="rob"), "alice", r"\* bob is now known as rob"),
        (Private(time=TS, name="bob", to="alice", text="psst"), "alice", r"\[PM from bob\] psst"),
        (Private(time=TS, name="alice", to="bob", text="hi"), "alice", r"\[PM to bob\] hi"),
        (AwayState(name="alice", text="lunch"), "alice", r"\* you are away: lunch"),
        (AwayState(name="alice"), "alice", r"\* you are back"),
        (
            WhoReply(room="#ops", users=[MemberInfo("a"), MemberInfo("b", "lunch")]),
            "a",
            r"\* in #ops: a, b \(away: lunch\)",
        ),
        (
            WhoReply(room="#ops", users=[MemberInfo("a"), MemberInfo("b", server="h:5002")]),
            "a",
            r"\* in #ops: a, b on h:5002$",
        ),
        (
            WhoisReply("b", ["#ops"], server="h:5002"),
            "a",
            r"\* b is online on h:5002, in #ops$",
        ),
        (RoomsReply(rooms=[RoomInfo("#ops", 2)]), "a", r"\* rooms: #ops \(2\)"),
    ]
    for frame, me, pattern in cases:
        line = render_frame(frame, me)  # type: ignore[arg-type]
        assert line is not None, frame
        assert re.fullmatch(rf"{STAMP} {pattern}", line.plain), (frame, line.plain)
    away = render_frame(Private(time=TS, name="a", to="b", text="x", away="lunch"), "a")
    assert away is not None
    assert "(b is away: lunch)" in away.plain


def test_private_messages_stand_out_from_room_messages() -> None:
    private = render_frame(Private(time=TS, name="bob", to="alice", text="psst"), "alice")
    public = render_frame(Message(seq=1, time=TS, name="bob", text="psst"), "alice")
    assert private is not None
    assert public is not None
    assert "\x1b[1;35m" in rendered(private)  # bold magenta marker
    assert "[PM" not in public.plain


def test_mentions_are_whole_words_in_any_case() -> None:
    assert mentions("hey Alice, look", "alice")
    assert mentions("alice.", "alice")
    assert mentions("@alice: hi", "alice")
    assert not mentions("malice aforethought", "alice")
    assert not mentions("alice.b is another name", "alice")
    assert not mentions("alice-2 is someone else", "alice")
    assert mentions("a.b: ping", "a.b")  # names with dots match literally
    assert not mentions("axb", "a.b")


def test_a_mention_is_highlighted_but_not_your_own() -> None:
    theirs = render_frame(Message(seq=1, time=TS, name="bob", text="alice: ready?"), "alice")
    mine = render_frame(Message(seq=2, time=TS, name="alice", text="alice here"), "alice")
    plain_one = render_frame(Message(seq=3, time=TS, name="bob", text="ready?"), "alice")
    assert theirs is not None
    assert mine is not None
    assert plain_one is not None
    assert "\x1b[1;7;33m" in rendered(theirs)  # bold reverse yellow
    assert "\x1b[1;7;33m" not in rendered(mine)
    assert "\x1b[1;7;33m" not in rendered(plain_one)


def test_server_log_on_a_terminal_dims_only_the_time() -> None:
    out = io.StringIO()
    log = ServerLog(out, terminal=True)
    log.console = Console(file=out, width=80, force_terminal=True, color_system="truecolor")
    log(MessageRelayed("alice", "hi"))
    log(UserJoined("bob", "127.0.0.1:4242"))
    log(UserLeft("bob", "127.0.0.1:4242", "quit"))
    got = re.sub(r"\d\d:\d\d:\d\d ", "T ", out.getvalue())
    stamp = "\x1b[2mT \x1b[0m"
    assert got == (
        f"{stamp}#lobby alice: hi\n"
        f"{stamp}\x1b[32m+ bob joined from 127.0.0.1:4242\x1b[0m\n"
        f"{stamp}\x1b[2m- bob left (quit) from 127.0.0.1:4242\x1b[0m\n"
    )


def test_status_table_says_what_history_the_server_keeps() -> None:
    reply = status_reply("alice")
    assert "history: none kept" in plain(rendered(status_table(reply)))
    kept = msgspec.structs.replace(
        reply.server, history=HistoryInfo(1204, 3 * 1024 * 1024, TS, "[red]disk[/] full")
    )
    out = plain(rendered(status_table(msgspec.structs.replace(reply, server=kept)), width=200))
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(TS))
    assert f"history: 1204 messages, 3.0 MiB, since {stamp}; stopped: [red]disk[/] full" in out
