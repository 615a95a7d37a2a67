"""The pure protocol: framing, decoding errors, limits, validation and sanitising.

No sockets and no event loop: bytes in, frames out, as the server and client use it.
"""

from __future__ import annotations

import json
import re
import unicodedata

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatctl.protocol import (
    FATAL_CODES,
    MAX_FRAME_BYTES,
    MAX_TEXT_BYTES,
    MAX_TEXT_LINES,
    PROTOCOL_VERSION,
    Away,
    AwayState,
    Bye,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
    Join,
    Joined,
    Left,
    MemberInfo,
    Message,
    Msg,
    Nick,
    NickChanged,
    Part,
    Parted,
    Ping,
    Pong,
    Private,
    ProtocolError,
    RoomInfo,
    RoomsReply,
    RoomsRequest,
    RoomState,
    Say,
    ServerInfo,
    Shutdown,
    StatusReply,
    StatusRequest,
    UserInfo,
    Welcome,
    WhoReply,
    WhoRequest,
    check_name,
    check_text,
    clean_frame,
    clean_line,
    clean_message,
    clean_text,
    client_frame_decoder,
    encode,
    name_key,
    server_frame_decoder,
)

# --------------------------------------------------------------------------- helpers


def drain(decoder: FrameDecoder[object]) -> list[object]:
    """Every whole frame buffered right now (raises on the first bad line)."""
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def decode_one(line: bytes, decoder: FrameDecoder[object] | None = None) -> object:
    decoder = decoder if decoder is not None else client_frame_decoder()
    decoder.feed(line)
    return decoder.next_frame()


def drain_one(line: bytes, decoder: FrameDecoder[object]) -> object:
    """The one frame of ``line``, and nothing left after it."""
    decoder.feed(line + b"\n")
    frame = decoder.next_frame()
    assert decoder.next_frame() is None
    return frame


def error_of(line: bytes, decoder: FrameDecoder[object] | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_one(line, decoder)
    return info.value


USER = UserInfo(
    name="alice",
    address="127.0.0.1:40000",
    connected_at=1_700_000_000.25,
    idle_seconds=1.5,
    messages_sent=3,
    bytes_queued=0,
)
SERVER_INFO = ServerInfo(
    version="0.1.0",
    protocol=PROTOCOL_VERSION,
    started_at=1_700_000_000.0,
    uptime_seconds=12.125,
    users=1,
    connections=2,
    messages_relayed=7,
    leave_reasons={"quit": 2, "dropped": 1},
)

CLIENT_FRAMES = [
    Hello(version=PROTOCOL_VERSION, name="alice"),
    Say(text="hello, world"),
    Say(text='two\nlines with ünïcödé ✓ and 😀 and "quotes" and \\backslash'),
    Say(text="waves", room="#ops", id="m-1", action=True),
    Hello(version=PROTOCOL_VERSION, name="alice", rooms=["#ops", "#lobby"]),
    Join(room="#ops", id="j.1"),
    Part(room="#ops"),
    Msg(to="bob", text="psst", id="p.1"),
    Nick(name="alicia"),
    Away(text="lunch"),
    Away(),
    RoomsRequest(),
    WhoRequest(room="#ops", id="w"),
    StatusRequest(),
    Bye(),
    Ping(),
    Pong(),
]
SERVER_FRAMES = [
    Welcome(version=PROTOCOL_VERSION, name="alice", server="x"),
    RoomState(room="#ops", seq=4, users=["alice", "bob"], online=2, topic="deploys"),
    Message(seq=5, time=1_700_000_000.123456, name="bob", text="hi\nthere 😀"),
    Message(5, 1_700_000_000.5, "bob", "waves", room="#ops", id="m-1", action=True),
    Parted(time=1_700_000_001.75, name="carol", room="#ops", seq=9),
    Parted(time=1_700_000_001.75, name="carol", room="#big"),
    NickChanged(time=1_700_000_002.5, name="carol", new="caro", room="#ops", seq=10),
    NickChanged(time=1_700_000_002.5, name="carol", new="caro"),
    Private(time=1_700_000_003.0, name="bob", to="alice", text="psst", id="x.1", away="lunch"),
    AwayState(name="alice", text="lunch", id="x.2"),
    RoomsReply(rooms=[RoomInfo("#ops", 2, "deploys"), RoomInfo("#lobby", 5)], id="x.3"),
    WhoReply(room="#ops", users=[MemberInfo("alice"), MemberInfo("bob", "lunch")]),
    Joined(seq=6, time=1_700_000_001.5, name="carol"),
    Left(seq=7, time=1_700_000_002.0, name="carol", reason="quit"),
    StatusReply(server=SERVER_INFO, users=[USER]),
    StatusReply(server=SERVER_INFO, users=[]),
    Error(code=ErrorCode.NAME_TAKEN, message="that name is taken"),
    Shutdown(reason="server shutting down"),
    Ping(),
    Pong(),
]
ALL_CASES = [(f, client_frame_decoder) for f in CLIENT_FRAMES] + [
    (f, server_frame_decoder) for f in SERVER_FRAMES
]
CASE_IDS = [f"{type(f).__name__}-{i}" for i, (f, _) in enumerate(ALL_CASES)]

# --------------------------------------------------------------------------- round trips


def test_every_frame_type_is_covered() -> None:
    """The cases below name every frame class, so a new frame type cannot go untested."""
    covered = {type(f) for f, _ in ALL_CASES}
    assert covered == {
        Hello,
        Say,
        Join,
        Part,
        Msg,
        Nick,
        Away,
        RoomsRequest,
        WhoRequest,
        StatusRequest,
        Bye,
        Ping,
        Pong,
        Welcome,
        RoomState,
        Message,
        Joined,
        Parted,
        Left,
        NickChanged,
        Private,
        AwayState,
        RoomsReply,
        WhoReply,
        StatusReply,
        Error,
        Shutdown,
    }


@pytest.mark.parametrize(("frame", "make_decoder"), ALL_CASES, ids=CASE_IDS)
def test_encode_is_one_json_line_with_its_tag(frame: object, make_decoder: object) -> None:
    data = encode(frame)  # type: ignore[arg-type]
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1  # newlines inside text are escaped as \n in JSON
    raw = msgspec.json.decode(data)
    assert raw["type"] == type(frame).__struct_config__.tag  # type: ignore[attr-defined]


@pytest.mark.parametrize(("frame", "make_decoder"), ALL_CASES, ids=CASE_IDS)
def test_round_trip_whole(frame: object, make_decoder: object) -> None:
    decoder = make_decoder()  # type: ignore[operator]
    decoder.feed(encode(frame))  # type: ignore[arg-type]
    got = decoder.next_frame()
    assert got == frame
    assert type(got) is type(frame)
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


@pytest.mark.parametrize(("frame", "make_decoder"), ALL_CASES, ids=CASE_IDS)
def test_round_trip_byte_by_byte(frame: object, make_decoder: object) -> None:
    data = encode(frame)  # type: ignore[arg-type]
    decoder = make_decoder()  # type: ignore[operator]
    got = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        got.extend(drain(decoder))
        if i < len(data) - 1:
            assert got == []
            assert decoder.buffered == i + 1
    assert got == [frame]
    assert decoder.buffered == 0


@pytest.mark.parametrize(("frame", "make_decoder"), ALL_CASES, ids=CASE_IDS)
def test_round_trip_split_at_every_position(frame: object, make_decoder: object) -> None:
    data = encode(frame)  # type: ignore[arg-type]
    for cut in range(len(data) + 1):
        decoder = make_decoder()  # type: ignore[operator]
        decoder.feed(data[:cut])
        first = drain(decoder)
        decoder.feed(data[cut:])
        second = drain(decoder)
        assert first + second == [frame], f"cut at {cut}"
        assert first == ([frame] if cut == len(data) else []), f"cut at {cut}"


@pytest.mark.parametrize(
    ("frames", "make_decoder"),
    [(CLIENT_FRAMES, client_frame_decoder), (SERVER_FRAMES, server_frame_decoder)],
    ids=["client", "server"],
)
def test_several_frames_in_one_chunk(frames: list[object], make_decoder: object) -> None:
    data = b"".join(encode(f) for f in frames)  # type: ignore[arg-type]
    decoder = make_decoder()  # type: ignore[operator]
    decoder.feed(data)
    assert drain(decoder) == frames
    assert decoder.buffered == 0
    # ... and the same stream split everywhere into two chunks, spanning frame boundaries.
    for cut in range(0, len(data) + 1, 7):
        decoder = make_decoder()  # type: ignore[operator]
        decoder.feed(data[:cut])
        got = drain(decoder)
        decoder.feed(data[cut:])
        got += drain(decoder)
        assert got == frames, f"cut at {cut}"


def test_partial_frame_then_rest_with_next_frame() -> None:
    a, b = encode(Say(text="first")), encode(Say(text="second"))
    decoder = client_frame_decoder()
    decoder.feed(a + b[:5])
    assert decoder.next_frame() == Say(text="first")
    assert decoder.next_frame() is None
    assert decoder.buffered == 5
    decoder.feed(b[5:])
    assert decoder.next_frame() == Say(text="second")
    assert decoder.next_frame() is None


def test_blank_lines_and_crlf_are_tolerated() -> None:
    decoder = client_frame_decoder()
    decoder.feed(b"\n\r\n   \n\t\n" + encode(Ping()).replace(b"\n", b"\r\n") + b"\n\n")
    decoder.feed(b'  {"type":"say","text":"x"}  \r\n')
    assert drain(decoder) == [Ping(), Say(text="x")]
    assert decoder.buffered == 0


def test_client_and_server_decoders_accept_only_their_direction() -> None:
    assert error_of(encode(SERVER_FRAMES[0])).code == ErrorCode.UNKNOWN_TYPE  # welcome
    assert error_of(encode(Shutdown(reason="x"))).code == ErrorCode.UNKNOWN_TYPE
    server_side = server_frame_decoder()
    assert error_of(encode(Hello(version=1, name="a")), server_side).code == (
        ErrorCode.UNKNOWN_TYPE
    )
    assert error_of(encode(Say(text="x")), server_frame_decoder()).code == ErrorCode.UNKNOWN_TYPE


# --------------------------------------------------------------------------- invalid input

# A TLS 1.2/1.3 ClientHello for example.com as a client sends it first; crafted without
# any 0x0a byte so that it is one "line". 0xfc and friends are not UTF-8.
TLS_CLIENT_HELLO = (
    b"\x16\x03\x01\x00\xa5"  # record: handshake, TLS 1.0 record version, length
    b"\x01\x00\x00\xa1\x03\x03"  # ClientHello, length, client version TLS 1.2
    + bytes(range(0x20, 0x40))  # client random
    + b"\x20"
    + bytes(range(0xE0, 0x100))  # session id
    + b"\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff"  # cipher suites
    + b"\x01\x00"  # compression methods: null
    + b"\x00\x50\x00\x00\x00\x10\x00\x0e\x00\x00\x0bexample.com"  # extensions: SNI
    + b"\x00\x2b\x00\x03\x02\x03\x04\x00\x0d\x00\x04\x00\x02\x04\x03\xfc\xfd\xfe"
)

BAD_FRAME = ErrorCode.INVALID_FRAME
BAD_UTF8 = ErrorCode.INVALID_UTF8
BAD_TYPE = ErrorCode.UNKNOWN_TYPE


def hello_with_version(version: bytes) -> bytes:
    return b'{"type":"hello","version":' + version + b',"name":"a"}'


def say_with_text(text: bytes) -> bytes:
    return b'{"type":"say","text":' + text + b"}"


DEEP = b"[" * 10_000 + b"]" * 10_000

INVALID_LINES: list[tuple[str, bytes, ErrorCode]] = [
    # not JSON at all
    ("garbage", b"this is not json", BAD_FRAME),
    ("truncated", b'{"type":"say","text":"a"', BAD_FRAME),
    ("trailing-garbage", b'{"type":"say","text":"a"} x', BAD_FRAME),
    ("single-quotes", b"{'type':'ping'}", BAD_FRAME),
    ("http-request-line", b"GET / HTTP/1.1\r", BAD_FRAME),  # mid-stream; first bytes: sniffed
    ("http-header", b"Host: localhost:5000\r", BAD_FRAME),
    ("raw-control-in-string", say_with_text(b'"\x1b[2J"'), BAD_FRAME),
    # not UTF-8 (outside any JSON string)
    ("utf8-leading", b'\xff{"type":"ping"}', BAD_UTF8),
    ("utf8-trailing", b'{"type":"ping"}\xfe', BAD_UTF8),
    ("utf8-bare", b"\xc3\x28\xa0\xa1", BAD_UTF8),
    ("tls-client-hello", TLS_CLIENT_HELLO, BAD_UTF8),
    # JSON, but not an object
    ("array", b"[1, 2, 3]", BAD_FRAME),
    ("string", b'"hello"', BAD_FRAME),
    ("number", b"42", BAD_FRAME),
    ("null", b"null", BAD_FRAME),
    ("true", b"true", BAD_FRAME),
    # objects without a known type
    ("unknown-type", b'{"type":"warp","speed":9}', BAD_TYPE),
    ("missing-type", b'{"text":"hi"}', BAD_TYPE),
    ("empty-object", b"{}", BAD_TYPE),
    ("type-not-string", b'{"type":5}', BAD_TYPE),
    ("type-null", b'{"type":null}', BAD_TYPE),
    ("type-list", b'{"type":["say"],"text":"x"}', BAD_TYPE),  # unhashable: no TypeError
    ("type-object", b'{"type":{}}', BAD_TYPE),
    ("type-case", b'{"type":"SAY","text":"x"}', BAD_TYPE),
    # known type, missing or wrong fields
    ("say-missing-text", b'{"type":"say"}', BAD_FRAME),
    ("say-text-int", say_with_text(b"5"), BAD_FRAME),
    ("say-text-null", say_with_text(b"null"), BAD_FRAME),
    ("say-text-list", say_with_text(b'["a"]'), BAD_FRAME),
    ("hello-missing-name", b'{"type":"hello","version":1}', BAD_FRAME),
    ("hello-missing-version", b'{"type":"hello","name":"a"}', BAD_FRAME),
    ("hello-version-str", hello_with_version(b'"1"'), BAD_FRAME),
    ("hello-version-float", hello_with_version(b"1.5"), BAD_FRAME),
    ("hello-version-bool", hello_with_version(b"true"), BAD_FRAME),
    ("hello-version-neg", hello_with_version(b"-1"), BAD_FRAME),
    ("hello-name-int", b'{"type":"hello","version":1,"name":7}', BAD_FRAME),
    # NaN and infinities are not JSON
    ("nan-text", say_with_text(b"NaN"), BAD_FRAME),
    ("nan-version", hello_with_version(b"NaN"), BAD_FRAME),
    ("infinity", hello_with_version(b"Infinity"), BAD_FRAME),
    ("neg-infinity", hello_with_version(b"-Infinity"), BAD_FRAME),
    # huge integers
    ("version-2**31+1", hello_with_version(b"2147483649"), BAD_FRAME),
    ("version-2**64", hello_with_version(b"18446744073709551616"), BAD_FRAME),
    ("version-400-digits", hello_with_version(b"9" * 400), BAD_FRAME),
    ("version-1e400", hello_with_version(b"1e400"), BAD_FRAME),
    # lone surrogates, escaped
    ("lone-high-surrogate", say_with_text(b'"\\ud800"'), BAD_FRAME),
    ("lone-low-surrogate", say_with_text(b'"\\udc00x"'), BAD_FRAME),
    ("high-then-not-low", say_with_text(b'"\\ud83d\\u0041"'), BAD_FRAME),
    ("surrogate-in-name", b'{"type":"hello","version":1,"name":"\\udfff"}', BAD_FRAME),
    # deep nesting
    ("deep-open-arrays", b"[" * 10_000, BAD_FRAME),
    ("deep-closed-arrays", DEEP, BAD_FRAME),
    ("deep-objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, BAD_FRAME),
    ("deep-in-text", say_with_text(DEEP), BAD_FRAME),
    ("deep-in-extra-field", b'{"type":"say","text":"x","a":' + DEEP + b"}", BAD_FRAME),
]


@pytest.mark.parametrize(
    ("line", "code"),
    [(line, code) for _, line, code in INVALID_LINES],
    ids=[name for name, *_ in INVALID_LINES],
)
def test_invalid_line_gives_its_code_and_the_next_line_still_decodes(
    line: bytes, code: ErrorCode
) -> None:
    decoder = client_frame_decoder()
    decoder.feed(encode(Ping()))  # mid-stream: the first bytes are sniffed separately
    assert decoder.next_frame() == Ping()
    decoder.feed(line + b"\n" + encode(Say(text="still here")))
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    err = info.value
    assert err.code == code
    assert not err.fatal
    assert err.message  # a sentence for humans...
    assert isinstance(err.code, ErrorCode)
    assert decoder.next_frame() == Say(text="still here")
    assert decoder.next_frame() is None


# Invalid UTF-8 *inside* JSON strings: msgspec raises UnicodeDecodeError here, which the
# decoder must map to invalid_utf8 like any other undecodable line.
INVALID_UTF8_IN_STRINGS = [
    ("in-text", b'{"type":"say","text":"\xff"}'),
    ("truncated-sequence", b'{"type":"say","text":"caf\xc3"}'),
    ("encoded-surrogate", b'{"type":"say","text":"\xed\xa0\x80"}'),
    ("overlong-slash", b'{"type":"say","text":"\xc0\xaf"}'),
    ("in-name", b'{"type":"hello","version":1,"name":"\xe9ve"}'),
    ("in-key", b'{"type":"say","te\xffxt":"a"}'),
    ("in-type", b'{"type":"s\xffy","text":"a"}'),
    ("bare-string", b'"\xff"'),
]


@pytest.mark.parametrize(
    "line", [v for _, v in INVALID_UTF8_IN_STRINGS], ids=[n for n, _ in INVALID_UTF8_IN_STRINGS]
)
def test_invalid_utf8_inside_a_json_string_is_invalid_utf8(line: bytes) -> None:
    decoder = client_frame_decoder()
    decoder.feed(line + b"\n" + encode(Ping()))
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == ErrorCode.INVALID_UTF8
    assert decoder.next_frame() == Ping()


def test_invalid_utf8_inside_a_json_string_in_the_client_decoder_too() -> None:
    line = b'{"type":"message","seq":1,"time":1.0,"name":"bob","text":"\xff"}\n'
    err = error_of(line, server_frame_decoder())
    assert err.code == ErrorCode.INVALID_UTF8


def test_invalid_utf8_in_an_ignored_field_is_still_refused() -> None:
    """A frame is one UTF-8 line; bytes that are not UTF-8 anywhere in it make it invalid."""
    err = error_of(b'{"type":"say","text":"a","extra":"\xff"}\n')
    assert err.code == ErrorCode.INVALID_UTF8


@pytest.mark.parametrize("tag", [b'["message"]', b'{"message":1}', b"{}", b"[]"])
def test_a_type_that_is_a_list_or_object_is_unknown_type_in_both_directions(tag: bytes) -> None:
    """Unhashable tags must not break the error path: a TypeError there dropped the peer."""
    line = b'{"type":' + tag + b',"seq":1,"time":1.0,"name":"a","text":"x"}\n'
    for decoder in (client_frame_decoder(), server_frame_decoder()):
        decoder.feed(line + encode(Ping()))
        with pytest.raises(ProtocolError) as info:
            decoder.next_frame()
        assert info.value.code == ErrorCode.UNKNOWN_TYPE
        assert decoder.next_frame() == Ping()


# docs/protocol.md, "Framing": if a key appears twice, the last value wins, ``type`` included.
DUPLICATE_KEYS: list[tuple[str, bytes, object]] = [
    ("type-say-then-ping", b'{"type":"say","type":"ping"}', Ping()),
    ("type-ping-then-say", b'{"type":"ping","type":"say","text":"x"}', Say(text="x")),
    ("type-unknown-then-say", b'{"type":"shout","type":"say","text":"x"}', Say(text="x")),
    ("type-thrice", b'{"type":"bye","type":"ping","type":"pong"}', Pong()),
    ("text-bad-then-good", b'{"type":"say","text":1,"text":"b"}', Say(text="b")),
    (
        "version-bad-then-good",
        b'{"type":"hello","version":"1","name":"a","version":1}',
        Hello(version=1, name="a"),
    ),
]


@pytest.mark.parametrize(
    ("line", "frame"),
    [(line, frame) for _, line, frame in DUPLICATE_KEYS],
    ids=[name for name, *_ in DUPLICATE_KEYS],
)
def test_a_duplicate_key_takes_its_last_value(line: bytes, frame: object) -> None:
    assert drain_one(line, client_frame_decoder()) == frame


def test_a_duplicate_key_takes_its_last_value_in_the_client_decoder_too() -> None:
    message = b'{"type":"pong","seq":1,"time":1.0,"name":"a","text":"x","type":"message"}'
    assert drain_one(message, server_frame_decoder()) == Message(
        seq=1, time=1.0, name="a", text="x"
    )
    inner = encode(StatusReply(server=SERVER_INFO, users=[USER]))[:-1]
    doubled = inner.replace(b'"users":1', b'"users":"one","users":1')  # inside "server"
    assert doubled != inner
    assert drain_one(doubled, server_frame_decoder()) == StatusReply(
        server=SERVER_INFO, users=[USER]
    )


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b'{"type":"say","text":"x","type":"shout"}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type":"say","text":"x","type":null}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type":"say","text":"x","text":1}', ErrorCode.INVALID_FRAME),
        (b'{"type":"say","text":"x","type":"ping","type":"hello"}', ErrorCode.INVALID_FRAME),
    ],
    ids=["last-type-unknown", "last-type-null", "last-text-bad", "last-type-lacks-fields"],
)
def test_a_duplicate_keys_bad_last_value_is_refused(line: bytes, code: ErrorCode) -> None:
    decoder = client_frame_decoder()
    decoder.feed(line + b"\n" + encode(Ping()))
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == code
    assert decoder.next_frame() == Ping()


def test_error_messages_never_quote_the_input() -> None:
    secret = "hunter2-secret-token"
    lines = [
        f'{{"type":"{secret}"}}'.encode(),
        f"{secret} not json".encode(),
        f'{{"type":"say","text":"{secret}",}}'.encode(),
        f'{{"type":"hello","version":"{secret}","name":"a"}}'.encode(),
    ]
    for line in lines:
        assert secret not in error_of(line + b"\n").message


@pytest.mark.parametrize(
    ("first_bytes", "code"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: localhost:5000\r\nAccept: */*\r\n\r\n",
            ErrorCode.UNEXPECTED_HTTP,
        ),
        (b"POST /x HTTP/1.1\r\n", ErrorCode.UNEXPECTED_HTTP),
        (TLS_CLIENT_HELLO, ErrorCode.UNEXPECTED_TLS),
    ],
    ids=["http-get", "http-post", "tls-client-hello"],
)
def test_another_protocols_first_bytes_are_named_at_once(
    first_bytes: bytes, code: ErrorCode
) -> None:
    """No newline needed: a TLS or HTTP peer is told at once, and the decoder stops."""
    decoder = client_frame_decoder()
    decoder.feed(first_bytes[:8])
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == code
    assert info.value.fatal
    assert decoder.buffered == 0
    decoder.feed(b"\n" + encode(Ping()))
    with pytest.raises(ProtocolError):
        decoder.next_frame()


def test_sniffing_looks_only_at_the_first_bytes() -> None:
    decoder = client_frame_decoder()
    decoder.feed(encode(Ping()) + b"GET / HTTP/1.1\r\n" + encode(Ping()))
    assert decoder.next_frame() == Ping()
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == ErrorCode.INVALID_FRAME
    assert decoder.next_frame() == Ping()


# --------------------------------------------------------------------------- frame_too_long


def _say_line_of(size: int) -> bytes:
    """A valid ``say`` frame whose line is exactly ``size`` bytes, newline excluded."""
    overhead = len(encode(Say(text=""))) - 1
    line = encode(Say(text="a" * (size - overhead)))[:-1]
    assert len(line) == size
    return line


def test_a_frame_of_exactly_max_bytes_is_accepted() -> None:
    line = _say_line_of(MAX_FRAME_BYTES)
    decoder = client_frame_decoder()
    decoder.feed(line)
    assert decoder.next_frame() is None  # MAX bytes, unfinished: not yet too long
    assert decoder.buffered == MAX_FRAME_BYTES
    decoder.feed(b"\n")
    frame = decoder.next_frame()
    assert isinstance(frame, Say)
    assert len(frame.text) == MAX_FRAME_BYTES - (len(encode(Say(text=""))) - 1)


@pytest.mark.parametrize("newline", [True, False], ids=["with-newline", "without-newline"])
@pytest.mark.parametrize("valid_json", [True, False], ids=["valid-json", "junk"])
def test_a_line_over_max_is_fatal_and_the_decoder_stays_broken(
    newline: bool, valid_json: bool
) -> None:
    line = _say_line_of(MAX_FRAME_BYTES + 1) if valid_json else b"x" * (MAX_FRAME_BYTES + 1)
    decoder = client_frame_decoder()
    decoder.feed(encode(Ping()) + line + (b"\n" if newline else b""))
    assert decoder.next_frame() == Ping()  # what came before is intact
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == ErrorCode.FRAME_TOO_LONG
    assert info.value.fatal
    assert decoder.buffered == 0
    # Broken for good: later good frames are not returned, and nothing is buffered.
    for _ in range(3):
        decoder.feed(encode(Say(text="after")) * 3)
        assert decoder.buffered == 0
        with pytest.raises(ProtocolError) as again:
            decoder.next_frame()
        assert again.value.code == ErrorCode.FRAME_TOO_LONG
        assert again.value.fatal


def test_frame_too_long_also_in_the_client_decoder_with_a_small_limit() -> None:
    decoder = server_frame_decoder(max_frame_bytes=100)
    decoder.feed(encode(Shutdown(reason="x" * 200)))
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == ErrorCode.FRAME_TOO_LONG
    assert info.value.fatal
    small = server_frame_decoder(max_frame_bytes=100)
    small.feed(encode(Shutdown(reason="x" * 50)))
    assert small.next_frame() == Shutdown(reason="x" * 50)


def test_only_unrecoverable_stream_errors_are_fatal() -> None:
    fatal = {ErrorCode.FRAME_TOO_LONG, ErrorCode.UNEXPECTED_TLS, ErrorCode.UNEXPECTED_HTTP}
    for code in ErrorCode:
        assert ProtocolError(code, "m").fatal == (code in fatal)


@pytest.mark.parametrize("chunk_size", [64 * 1024, 4096, 1000])
@pytest.mark.parametrize("newlines", [False, True], ids=["one-line", "long-lines"])
def test_buffered_stays_bounded_while_an_endless_line_arrives(
    chunk_size: int, newlines: bool
) -> None:
    decoder = client_frame_decoder()
    total = 2 * 1024 * 1024
    # Either one endless line, or lines of 100 KB, each over the limit.
    pattern = (b"a" * 99_999 + b"\n") if newlines else b"a" * 100_000
    stream = (pattern * (total // len(pattern) + 1))[:total]
    errors: list[ProtocolError] = []
    peak = 0
    for i in range(0, total, chunk_size):
        decoder.feed(stream[i : i + chunk_size])
        peak = max(peak, decoder.buffered)
        assert decoder.buffered <= MAX_FRAME_BYTES + chunk_size
        try:
            assert decoder.next_frame() is None
        except ProtocolError as exc:
            errors.append(exc)
        assert decoder.buffered <= MAX_FRAME_BYTES
    assert errors, "an endless line must raise frame_too_long"
    assert all(e.code == ErrorCode.FRAME_TOO_LONG and e.fatal for e in errors)
    assert peak <= MAX_FRAME_BYTES + chunk_size
    assert decoder.buffered == 0


def test_the_limit_is_reached_exactly_at_max_plus_one_without_newline() -> None:
    decoder = client_frame_decoder()
    for _ in range(MAX_FRAME_BYTES // 1024):
        decoder.feed(b"b" * 1024)
        assert decoder.next_frame() is None
    assert decoder.buffered == MAX_FRAME_BYTES
    decoder.feed(b"b")
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == ErrorCode.FRAME_TOO_LONG


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["a", "alice", "Alice", "bob_2", "x-y", "first.last", "_", "-", ".", "A" * 32, "a.b-c_D9"],
)
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 33,
        "al ice",
        " alice",
        "alice ",
        "alice\n",
        "\nalice",
        "a\tb",
        "a\x00",
        "a/b",
        "a@b",
        "a:b",
        "\u0430\u043b\u0438\u0441\u0430",  # Cyrillic "alisa"
        "\u0430lice",  # Cyrillic a, then Latin
        "١٢٣",  # Arabic-Indic digits
        "٣",
        "²",  # superscript two: isdigit() says yes
        "\uff4c\uff4f\uff47",  # fullwidth "log"
        "café",
        "ǅ",
        "a\u200bb",  # zero-width space
        "\x1b[31m",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_name(name)
    assert info.value.code == ErrorCode.INVALID_NAME
    assert not info.value.fatal


def test_name_key_is_case_insensitive() -> None:
    assert name_key("Alice") == name_key("alice") == name_key("ALICE") == "alice"
    assert name_key("Bob.Smith-2") == "bob.smith-2"
    assert name_key("alice") != name_key("alicia")


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("text", ["", " ", "\n", "  \n\t \r\n ", "\u3000"])
def test_empty_messages(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_text(text)
    assert info.value.code == ErrorCode.EMPTY_MESSAGE


@pytest.mark.parametrize(
    "text",
    [
        "a",
        "a" * MAX_TEXT_BYTES,
        "é" * (MAX_TEXT_BYTES // 2),  # 2 bytes each
        "😀" * (MAX_TEXT_BYTES // 4),  # 4 bytes each
        "€" * 1365,  # 3 bytes each: 4095
        "\n".join(["line"] * MAX_TEXT_LINES),
        "\r\n".join(["line"] * MAX_TEXT_LINES),
        "\r".join(["line"] * MAX_TEXT_LINES),
    ],
    ids=["one", "max-ascii", "max-2byte", "max-4byte", "3byte", "max-lf", "max-crlf", "max-cr"],
)
def test_texts_within_limits(text: str) -> None:
    assert check_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "a" * (MAX_TEXT_BYTES + 1),
        "é" * (MAX_TEXT_BYTES // 2) + "a",  # 2049 characters, 4097 bytes
        "€" * 1366,  # 1366 characters, 4098 bytes
        "😀" * (MAX_TEXT_BYTES // 4 + 1),  # 1025 characters, 4100 bytes
        "\n".join(["line"] * (MAX_TEXT_LINES + 1)),
        "\r\n".join(["line"] * (MAX_TEXT_LINES + 1)),
        "\r".join(["line"] * (MAX_TEXT_LINES + 1)),
        "x" + "\n" * MAX_TEXT_LINES,
    ],
    ids=["ascii", "2byte", "3byte", "4byte", "lines-lf", "lines-crlf", "lines-cr", "newlines"],
)
def test_texts_too_long(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_text(text)
    assert info.value.code == ErrorCode.MESSAGE_TOO_LONG
    assert not info.value.fatal


def test_text_byte_limit_counts_utf8_bytes_not_characters() -> None:
    text = "€" * 1366
    assert len(text) < MAX_TEXT_BYTES < len(text.encode())
    with pytest.raises(ProtocolError):
        check_text(text)


# --------------------------------------------------------------------------- sanitising

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def unsafe_chars(text: str, *, newline_ok: bool) -> list[str]:
    """Characters a terminal could act on (C0/C1 controls, DEL, bidi marks), or that a
    line-splitting tool takes for a line break (U+2028, U+2029)."""
    return [
        ch
        for ch in text
        if (unicodedata.category(ch) in ("Cc", "Zl", "Zp") and not (newline_ok and ch == "\n"))
        or ch in BIDI
    ]


HOSTILE = [
    ("esc", "\x1b", "\\x1b"),
    ("bel", "\x07", "\\x07"),
    ("csi-clear", "\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
    ("sgr", "\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("osc52-clipboard", "\x1b]52;c;cm0gLXJmIH4=\x07", "\\x1b]52;c;cm0gLXJmIH4=\\x07"),
    ("osc-title-st", "\x1b]0;pwned\x1b\\", "\\x1b]0;pwned\\x1b\\"),
    ("c1-csi", "\x9b31m", "\\x9b31m"),
    ("c1-osc", "\x9d0;t\x9c", "\\x9d0;t\\x9c"),
    ("nel", "a\x85b", "a\\x85b"),
    ("del", "a\x7fb", "a\\x7fb"),
    ("nul", "a\x00b", "a\\x00b"),
    ("backspace", "abc\x08\x08\x08xyz", "abc\\x08\\x08\\x08xyz"),
    ("rlo", "abc\u202efdp.exe", "abc\\u202efdp.exe"),
    ("lri", "\u2066x\u2069", "\\u2066x\\u2069"),
    ("alm", "\u061c", "\\u061c"),
    ("rlm-lrm", "\u200f\u200e", "\\u200f\\u200e"),
    ("line-separator", "a\u2028b", "a\\u2028b"),
    ("paragraph-separator", "a\u2029b", "a\\u2029b"),
    ("vt-ff", "a\x0b\x0cb", "a\\x0b\\x0cb"),
    ("fs-gs-rs", "\x1c\x1d\x1e", "\\x1c\\x1d\\x1e"),
]

#: Every character ``str.splitlines()`` ends a line at (and so do log viewers and editors).
LINE_BREAKS = "\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"


def test_line_breaks_are_every_one_that_splitlines_knows() -> None:
    found = "".join(chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1)
    assert found == LINE_BREAKS


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_no_line_break_but_newline_survives_sanitising(brk: str) -> None:
    """A forged line in a pipe or a log needs only a break a line-splitting tool obeys."""
    line = clean_line(f"a{brk}b")
    assert len(line.splitlines()) == 1, repr(line)
    text = clean_text(f"a{brk}b")
    assert text.splitlines() == (["a", "b"] if brk in "\r\n" else [text]), repr(text)
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("raw", "escaped"), [(r, e) for _, r, e in HOSTILE], ids=[n for n, *_ in HOSTILE]
)
def test_hostile_text_comes_out_escaped(raw: str, escaped: str) -> None:
    for clean in (clean_text, clean_line):
        out = clean(raw)
        assert out == escaped
        assert unsafe_chars(out, newline_ok=False) == []
        assert clean(out) == out  # idempotent
        assert out.isprintable()


def test_clean_text_keeps_newlines_and_normalises_them() -> None:
    assert clean_text("one\ntwo") == "one\ntwo"
    assert clean_text("one\r\ntwo\rthree") == "one\ntwo\nthree"
    assert clean_text("a\tb") == "a    b"
    assert clean_text("line\n\x1b[1Aup") == "line\n\\x1b[1Aup"


def test_clean_line_escapes_newlines() -> None:
    assert clean_line("one\ntwo") == "one\\x0atwo"
    assert clean_line("one\r\ntwo") == "one\\x0d\\x0atwo"
    assert clean_line("a\tb") == "a b"
    assert "\n" not in clean_line("x\n" * 5)


@pytest.mark.parametrize("text", ["plain", "ünïcödé ✓ 😀 日本語", "", "back\\slash \\x1b", "a b"])
def test_clean_leaves_harmless_text_alone(text: str) -> None:
    assert clean_text(text) == text
    assert clean_line(text) == text


def test_clean_frame_message_keeps_text_newlines_escapes_the_rest() -> None:
    frame = Message(seq=1, time=2.0, name="ev\x1bil\n", text="one\ntwo\x1b[2J\r\nthree\x07")
    out = clean_frame(frame)
    assert out == Message(
        seq=1, time=2.0, name="ev\\x1bil\\x0a", text="one\ntwo\\x1b[2J\nthree\\x07"
    )
    assert clean_frame(out) == out


def test_clean_frame_cleans_lists_and_nested_structs() -> None:
    users = ["ok", "\x1b]52;c;eA==\x07", "x\ny"]
    state = RoomState(room="#r\x9b", seq=0, users=users, online=3)
    out = clean_frame(state)
    assert out.users == ["ok", "\\x1b]52;c;eA==\\x07", "x\\x0ay"]
    assert out.room == "#r\\x9b"
    welcome = clean_frame(Welcome(version=2, name="me", server="s\x9b"))
    assert welcome.server == "s\\x9b"

    user = UserInfo(
        name="\u202eevil",
        address="1.2.3.4:5\x1b[2J",
        connected_at=0.0,
        idle_seconds=0.0,
        messages_sent=0,
        bytes_queued=0,
    )
    info = msgspec.structs.replace(
        SERVER_INFO, version="1\x07", leave_reasons={"quit\x1b": 1, "dropped": 2}
    )
    reply = clean_frame(StatusReply(server=info, users=[USER, user]))
    assert reply.users[0] == USER
    assert reply.users[1].name == "\\u202eevil"
    assert reply.users[1].address == "1.2.3.4:5\\x1b[2J"
    assert reply.server.version == "1\\x07"
    assert reply.server.leave_reasons == {"quit\\x1b": 1, "dropped": 2}
    assert clean_frame(reply) == reply
    assert all(unsafe_chars(s, newline_ok=False) == [] for s in strings_in(reply))


def strings_in(value: object) -> list[str]:
    """Every string inside a frame, however deeply nested (dict keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, msgspec.Struct):
        return [s for f in value.__struct_fields__ for s in strings_in(getattr(value, f))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    return []


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (Error(code="x\x1b", message="bad\nthing"), Error(code="x\\x1b", message="bad\\x0athing")),
        (Shutdown(reason="bye\x07\n"), Shutdown(reason="bye\\x07\\x0a")),
        (
            Left(seq=1, time=1.0, name="a\u2066", reason="quit\r"),
            Left(seq=1, time=1.0, name="a\\u2066", reason="quit\\x0d"),
        ),
        (Joined(seq=1, time=1.0, name="\x9bx"), Joined(seq=1, time=1.0, name="\\x9bx")),
        (Say(text="hi\n\x1b"), Say(text="hi\n\\x1b")),
        (Hello(version=1, name="n\n"), Hello(version=1, name="n\\x0a")),
    ],
)
def test_clean_frame_every_string_field(frame: object, expected: object) -> None:
    assert clean_frame(frame) == expected  # type: ignore[type-var]
    assert clean_frame(expected) == expected  # type: ignore[type-var]


@pytest.mark.parametrize(("frame", "make_decoder"), ALL_CASES, ids=CASE_IDS)
def test_clean_frame_returns_clean_frames_unchanged(frame: object, make_decoder: object) -> None:
    assert clean_frame(frame) is frame  # type: ignore[type-var]


# --------------------------------------------------------------------------- properties

FRAGMENTS = [
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b'"',
    b"\\",
    b":",
    b",",
    b'{"type":"say","text":"',
    b'{"type":"hello","version":',
    b'"name":"',
    b'{"type":"ping"}',
    b'"}',
    b"\\ud800",
    b"\\u0000",
    b"NaN",
    b"99999999999999999999999999",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x1b[2J",
]

# JSON-shaped lines whose strings hold arbitrary bytes, as a hostile peer would send.
json_with_raw_strings = st.one_of(
    st.binary(max_size=12).map(lambda b: b'{"type":"say","text":"' + b + b'"}\n'),
    st.binary(max_size=12).map(lambda b: b'{"type":"hello","version":1,"name":"' + b + b'"}\n'),
    st.binary(max_size=12).map(lambda b: b'{"' + b + b'":"x"}\n'),
)
stream_pieces = st.lists(
    st.one_of(st.binary(max_size=40), st.sampled_from(FRAGMENTS), json_with_raw_strings),
    max_size=40,
).map(b"".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=stream_pieces, limit=st.sampled_from([16, 64, MAX_FRAME_BYTES]), split=st.data())
def test_property_arbitrary_bytes_give_frames_or_protocol_errors(
    data: bytes, limit: int, split: st.DataObject
) -> None:
    cuts = sorted(split.draw(st.lists(st.integers(0, len(data)), max_size=10)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    decoder = client_frame_decoder(max_frame_bytes=limit)
    broken = False
    for chunk in chunks:
        decoder.feed(chunk)
        assert decoder.buffered <= limit + len(chunk)
        while True:
            frame, error = _step(decoder)  # any other exception fails the test
            if error is not None:
                assert isinstance(error.code, ErrorCode)
                assert not broken or error.fatal
                if error.fatal:
                    assert error.code in FATAL_CODES
                    broken = True
                    break
                continue
            if frame is None:
                assert not broken
                break
            assert isinstance(frame, Hello | Say | StatusRequest | Bye | Ping | Pong)
        assert decoder.buffered <= limit
        if broken:
            assert decoder.buffered == 0


def _step(decoder: FrameDecoder[object]) -> tuple[object, ProtocolError | None]:
    try:
        return decoder.next_frame(), None
    except ProtocolError as exc:
        return None, exc


say_or_hello = st.one_of(
    st.builds(Say, text=st.text(max_size=200)),
    st.builds(Hello, version=st.integers(0, 2**31), name=st.text(max_size=40)),
)


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(say_or_hello, max_size=8), split=st.data())
def test_property_encode_split_decode_round_trips(
    frames: list[object], split: st.DataObject
) -> None:
    data = b"".join(encode(f) for f in frames)  # type: ignore[arg-type]
    cuts = sorted(split.draw(st.lists(st.integers(0, len(data)), max_size=12)))
    decoder = client_frame_decoder()
    got: list[object] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        decoder.feed(data[a:b])
        got.extend(drain(decoder))
    assert got == frames
    assert decoder.buffered == 0


hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("\x1b\x07\x9b\x9c\x7f\x00\r\n\t\x85\u2028" + BIDI)),
    ),
    max_size=100,
)
_C0_C1_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@settings(max_examples=200, deadline=None)
@given(text=hostile_text)
def test_property_clean_text_is_idempotent_and_inert(text: str) -> None:
    out = clean_text(text)
    assert clean_text(out) == out
    assert not _C0_C1_BUT_NEWLINE.search(out)
    assert unsafe_chars(out, newline_ok=True) == []
    assert out.count("\n") == text.count("\n") + text.count("\r") - text.count("\r\n")
    line = clean_line(text)
    assert clean_line(line) == line
    assert unsafe_chars(line, newline_ok=False) == []


def test_next_line_reports_blank_lines_that_next_frame_skips() -> None:
    """The server paces blank lines like frames, so it must see each one, one per call."""
    from chatctl.protocol import BLANK

    decoder = client_frame_decoder()
    decoder.feed(b"\n  \r\n" + encode(Ping()) + b"\n")
    assert decoder.next_line() is BLANK
    assert decoder.next_line() is BLANK
    assert decoder.next_line() == Ping()
    assert decoder.next_line() is BLANK
    assert decoder.next_line() is None
    decoder.feed(b"\n\n" + encode(Pong()))
    assert decoder.next_frame() == Pong()
    assert decoder.next_frame() is None


@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
    | st.sampled_from(["", " ", "a\r\nb", "x" * 5000])
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_clean_message_is_check_then_clean(text: str) -> None:
    """The server's one call per message decides exactly as check_text then clean_text."""

    def both(f: object) -> tuple[str, object]:
        try:
            return "ok", f()  # type: ignore[operator]
        except ProtocolError as exc:
            return "refused", exc.code

    assert both(lambda: clean_message(text, 4096, 3)) == both(
        lambda: clean_text(check_text(text, 4096, 3))
    )


@pytest.mark.parametrize(
    "value", ["[bold red]hi[/]", "x - at `$.name` [link=http://x]y", "it's\x1b[2J"]
)
def test_an_invalid_choice_is_not_quoted_back(value: str) -> None:
    """msgspec quotes a wrong enum value (`Invalid enum value '[bold red]hi[/]'`): an error
    never repeats what the client sent (found by a fuzzing helper, up to 32 KB of it)."""
    decoder = client_frame_decoder()
    decoder.feed(
        json.dumps({"type": "mod", "room": "#a", "do": value, "name": "x"}).encode() + b"\n"
    )
    with pytest.raises(ProtocolError) as caught:
        decoder.next_line()
    assert caught.value.code == ErrorCode.INVALID_FRAME
    assert caught.value.message == "invalid frame: Invalid enum value - at `$.do`"
