"""Pure rules, as tables: slash commands, which frame is allowed when, the version-1 view,
and the client's bookkeeping of its rooms. No sockets."""

from __future__ import annotations

import pytest

from chatctl import commands as c
from chatctl.client.rooms import Rooms
from chatctl.protocol import (
    Away,
    Bye,
    ErrorCode,
    Hello,
    Join,
    Joined,
    Left,
    Message,
    Msg,
    Nick,
    NickChanged,
    Part,
    Parted,
    Phase,
    Ping,
    Pong,
    RoomsRequest,
    RoomState,
    Say,
    StatusRequest,
    WhoRequest,
    check_allowed,
    check_room,
    v1,
)

# --------------------------------------------------------------------------- slash commands


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", c.Text("hello")),
        ("  spaced  ", c.Text("  spaced  ")),
        ("//etc/passwd is a path", c.Text("/etc/passwd is a path")),
        ("/join ops", c.JoinRoom("#ops")),
        ("/join #OPS", c.JoinRoom("#ops")),
        ("/j #ops", c.JoinRoom("#ops")),
        ("/part", c.PartRoom(None)),
        ("/part ops", c.PartRoom("#ops")),
        ("/rooms", c.ListRooms()),
        ("/who", c.Who(None)),
        ("/who #ops", c.Who("#ops")),
        ("/msg bob hi there", c.Private("bob", "hi there")),
        ("/MSG bob  hi", c.Private("bob", "hi")),
        ("/reply ok", c.Reply("ok")),
        ("/me waves", c.Action("waves")),
        ("/nick robert", c.ChangeNick("robert")),
        ("/away lunch, back at 2", c.SetAway("lunch, back at 2")),
        ("/away", c.SetAway(None)),
        ("/switch lobby", c.SwitchRoom("#lobby")),
        ("/help", c.Help()),
        ("/quit", c.Quit()),
        ("exit", c.Quit()),
        ("  /quit ", c.Quit()),
    ],
)
def test_a_line_means_one_command(line: str, expected: c.Command) -> None:
    assert c.parse(line) == expected


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("/frobnicate now", "unknown command /frobnicate"),
        ("/msg bob", "usage: /msg NAME TEXT"),
        ("/msg", "usage: /msg NAME TEXT"),
        ("/msg not/a/name hi", "names are"),
        ("/join", "usage: /join ROOM"),
        ("/join #bad!room", "rooms are"),
        ("/me", "usage: /me ACTION"),
        ("/nick", "usage: /nick NEW"),
        ("/nick two words", "names are"),
        ("/reply", "usage: /reply TEXT"),
        ("/switch", "usage: /switch ROOM"),
        ("/", "unknown command /"),
    ],
)
def test_a_mistake_is_said_and_nothing_is_sent(line: str, says: str) -> None:
    """A Mistake is never turned into text: /msg bob without text must not reach the room."""
    result = c.parse(line)
    assert isinstance(result, c.Mistake), result
    assert says in result.message


def test_every_command_in_the_table_parses_and_help_lists_it() -> None:
    help_text = "\n".join(c.help_lines())
    for spec in c.COMMANDS:
        assert spec.usage in help_text
        assert not isinstance(c.parse(f"/{spec.name} x y"), c.Mistake) or spec.name in {
            "nick",  # "x y" is not a name
            "whois",  # likewise
            "history",  # nor a count
            "hand",  # "x y" is neither up nor down
        }


def test_history_takes_a_count_or_none() -> None:
    assert c.parse("/history") == c.ShowHistory(20)
    assert c.parse("/history 120") == c.ShowHistory(120)
    for wrong in ("/history 0", "/history 501", "/history bob many", "/history b@d"):
        assert isinstance(c.parse(wrong), c.Mistake), wrong
    assert c.parse("/unread") == c.ShowUnread()


def test_history_of_a_conversation_takes_a_name_then_a_count() -> None:
    assert c.parse("/history bob") == c.ShowHistory(20, "bob")
    assert c.parse("/history @bob 5") == c.ShowHistory(5, "bob")
    assert c.parse("/history 42") == c.ShowHistory(42)  # a number is a count, not a name


def test_search_takes_the_rest_of_the_line() -> None:
    assert c.parse("/search standup  moved ") == c.Search("standup  moved")
    assert c.parse("/find deploy") == c.Search("deploy")
    assert isinstance(c.parse("/search"), c.Mistake)


# --------------------------------------------------------------------------- which frame when

V2_REQUESTS = [
    Join("#ops"),
    Part("#ops"),
    Msg("bob", "hi"),
    Nick("bob"),
    Away("lunch"),
    RoomsRequest(),
    WhoRequest("#ops"),
]


@pytest.mark.parametrize("frame", [StatusRequest(), Ping(), Pong(), Bye()])
def test_status_ping_pong_and_bye_are_allowed_in_every_phase(frame: object) -> None:
    for phase in Phase:
        for version in (1, 2):
            assert check_allowed(phase, version, frame) is None  # type: ignore[arg-type]


def test_before_hello_only_hello_and_the_phase_free_frames() -> None:
    assert check_allowed(Phase.GREETING, 1, Hello(2, "alice")) is None
    for frame in [Say("hi"), *V2_REQUESTS]:
        error = check_allowed(Phase.GREETING, 1, frame)
        assert error is not None
        assert error.code == ErrorCode.NOT_JOINED, frame


def test_joined_everything_but_a_second_hello() -> None:
    error = check_allowed(Phase.CHATTING, 2, Hello(2, "again"))
    assert error is not None
    assert error.code == ErrorCode.ALREADY_JOINED
    for frame in [Say("hi"), *V2_REQUESTS]:
        assert check_allowed(Phase.CHATTING, 2, frame) is None, frame


def test_a_version_1_connection_gets_unknown_type_for_version_2_frames() -> None:
    assert check_allowed(Phase.CHATTING, 1, Say("hi")) is None
    for frame in V2_REQUESTS:
        error = check_allowed(Phase.CHATTING, 1, frame)
        assert error is not None
        assert error.code == ErrorCode.UNKNOWN_TYPE, frame


# --------------------------------------------------------------------------- the version-1 view


def test_every_lobby_event_is_exactly_one_version_1_frame_with_its_seq() -> None:
    t = 1_700_000_000.0
    cases = [
        (Message(1, t, "a", "hi", "#lobby", "id-1"), Message(1, t, "a", "hi")),
        (Message(2, t, "a", "waves", "#lobby", action=True), Message(2, t, "a", "/me waves")),
        (Joined(3, t, "b", "#lobby"), Joined(3, t, "b")),
        (Left(4, t, "b", "quit", "#lobby"), Left(4, t, "b", "quit")),
        (Parted(t, "c", "#lobby", 5), Left(5, t, "c", "part")),
        (NickChanged(t, "d", "e", "#lobby", 6), Left(6, t, "d", "nick")),
    ]
    for event, expected in cases:
        assert v1.view(event) == expected


def test_rooms_are_canonical_lower_case() -> None:
    assert check_room("#Ops.Team-2") == "#ops.team-2"
    for bad in ("ops", "#", "#" + "x" * 31, "#sp ace", "#ünï", "##x"):
        with pytest.raises(Exception, match="rooms are"):
            check_room(bad)


# --------------------------------------------------------------------------- the client's rooms


def test_the_client_follows_its_rooms_and_who_is_in_them() -> None:
    rooms = Rooms()
    rooms.apply(RoomState("#ops", 4, ["bob", "alice"], 2), "alice")
    rooms.apply(RoomState("#lobby", 0, ["alice"], 1), "alice")
    assert rooms.names() == ["#ops", "#lobby"]
    assert rooms.current == "#ops"  # the first room joined
    rooms.apply(Joined(5, 0.0, "carol", "#ops"), "alice")
    rooms.apply(NickChanged(0.0, "bob", "rob", "#ops", 6), "alice")
    assert sorted(rooms.members("#ops")) == ["alice", "carol", "rob"]
    rooms.apply(Left(7, 0.0, "carol", "quit", "#ops"), "alice")
    rooms.apply(Parted(0.0, "rob", "#ops", 8), "alice")
    assert rooms.members() == ["alice"]
    assert rooms.rooms["#ops"].seq == 8
    rooms.switch("#lobby")
    rooms.apply(Parted(0.0, "alice", "#lobby", 1), "alice")  # we left the current room
    assert rooms.names() == ["#ops"]
    assert rooms.current == "#ops"
    rooms.apply(Joined(9, 0.0, "x", "#elsewhere"), "alice")  # not ours: ignored
    assert "#elsewhere" not in rooms
    rooms.switch_back("#gone")
    assert rooms.current == "#ops"
