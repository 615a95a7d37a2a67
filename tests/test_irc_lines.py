"""The IRC door's pure parts: lines in, frames and lines out, for any input at all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatctl.irc import events
from chatctl.irc.connection import IrcConnection
from chatctl.irc.events import Tags
from chatctl.irc.lines import Line, LineDecoder, chunks, parse, strip_formatting
from chatctl.protocol import (
    BLANK,
    Joined,
    Message,
    Msg,
    ProtocolError,
    Say,
    clean_message,
)

pytestmark = pytest.mark.timeout(60)


def test_parse_splits_tags_source_command_and_trailing() -> None:
    line = parse(r"@time=x;a=b\sc :nick!u@h privmsg #lobby :hello there")
    assert line == Line("PRIVMSG", ["#lobby", "hello there"], {"time": "x", "a": "b c"})
    assert parse("JOIN #a,#b key").params == ["#a,#b", "key"]
    assert parse("QUIT :").params == [""]


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("\x02bold\x02", "bold"),
        ("\x0304red\x03 \x0312,01blue", "red blue"),
        ("\x04ff0000hex\x0f", "hex"),
        (
            "\x1ditalic\x1d \x1funder\x1f \x1estrike\x1e \x11mono\x11 \x16rev",
            "italic under strike mono rev",
        ),
        ("100\x03 apples", "100 apples"),
        ("plain", "plain"),
    ],
)
def test_formatting_codes_are_removed(text: str, plain: str) -> None:
    assert strip_formatting(text) == plain


def test_chunks_cut_long_lines_never_inside_a_character() -> None:
    text = "é" * 300  # 600 bytes
    parts = chunks(text, 401)
    assert "".join(parts) == text
    assert all(len(p.encode()) <= 401 for p in parts)
    assert chunks("a\n\nb") == ["a", " ", "b"]


def test_the_decoder_refuses_long_lines_nul_cr_and_bad_utf8_and_goes_on() -> None:
    decoder = LineDecoder()
    decoder.feed(
        b"PRIVMSG #a :" + b"x" * 600 + b"\r\nPING a\x00b\r\nPING a\rb\r\n\xff\r\n\r\nPING ok\r\n"
    )
    codes = []
    got = []
    while True:
        try:
            item = decoder.next_line()
        except ProtocolError as exc:
            codes.append(exc.code)
            continue
        if item is None:
            break
        got.append(item)
    assert codes == ["message_too_long", "invalid_frame", "invalid_frame", "invalid_utf8"]
    assert got == [BLANK, Line("PING", ["ok"])]


def test_an_endless_line_is_refused_once_and_skipped_to_its_end() -> None:
    decoder = LineDecoder()
    decoder.feed(b"x" * 10_000)
    with pytest.raises(ProtocolError):
        decoder.next_line()
    decoder.feed(b"y" * 10_000)
    assert decoder.next_line() is None
    decoder.feed(b"tail\r\nPING again\r\n")
    assert decoder.next_line() == Line("PING", ["again"])


def registered() -> IrcConnection:
    conn = IrcConnection("test")
    conn.receive(parse("NICK alice"))
    out = conn.receive(parse("USER a 0 * :A"))
    assert len(out) == 1
    return conn


def test_privmsg_becomes_say_or_msg_and_ctcp_action_a_me() -> None:
    conn = registered()
    assert conn.receive(parse("PRIVMSG #lobby,bob :hi")) == [
        Say("hi", "#lobby"),
        Msg("bob", "hi", "msg:bob"),
    ]
    assert conn.receive(parse("PRIVMSG #lobby :\x01ACTION waves\x01")) == [
        Say("waves", "#lobby", action=True)
    ]
    assert conn.receive(parse("PRIVMSG bob :\x01VERSION\x01")) == []
    assert conn.receive(parse("NOTICE nobody")) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_lines_or_refusals_and_any_line_gives_frames_or_replies(data: bytes) -> None:
    decoder = LineDecoder()
    decoder.feed(data + b"\r\n")
    conn = registered()
    for _ in range(100):
        try:
            item = decoder.next_line()
        except ProtocolError:
            continue
        if item is None:
            break
        if item is BLANK:
            continue
        assert isinstance(item, Line)
        for out in conn.receive(item):
            if isinstance(out, str):
                assert not set(out) & {"\r", "\n", "\0"}
                assert len(out.encode()) <= 1024


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=2000), st.sampled_from(list(Tags)))
def test_no_chatctl_text_can_start_an_irc_line(text: str, tags: Tags) -> None:
    try:
        clean = clean_message(text)
    except ProtocolError:
        return
    data = events.encoder(tags)(Message(7, 1.5, "bob", clean, "#lobby", action=True))
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    for line in lines[:-1]:
        assert b"\n" not in line
        assert b"\r" not in line
        assert b"\0" not in line
        body = line.split(b" ", 1)[1] if tags else line
        assert body.startswith(b":bob!bob@chatctl PRIVMSG #lobby :\x01ACTION ")
        assert len(body) + 2 <= 512


def test_events_read_as_irc_says_them() -> None:
    encode = events.encoder(Tags.NONE)
    assert encode(Joined(1, 0.0, "bob", "#ops")) == b":bob!bob@chatctl JOIN #ops\r\n"
    tagged = events.encoder(Tags.ALL)(Message(9, 0.25, "bob", "hi", "#ops"))
    assert (
        tagged
        == b"@time=1970-01-01T00:00:00.250Z;msgid=9#ops :bob!bob@chatctl PRIVMSG #ops :hi\r\n"
    )
