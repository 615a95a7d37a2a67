"""Server and client cores over real loopback sockets.

Each test gets its own in-process server (fixture ``server``) on an ephemeral port.
Raw ``asyncio.open_connection`` sockets play clients that misbehave; waits poll a
condition until a deadline, never sleep a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chatctl import __version__
from chatctl.client import ChatClient, ConnectionLost, Refused, Unreachable, fetch_status
from chatctl.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    WELCOME_NAMES,
    Error,
    ErrorCode,
    Frame,
    Hello,
    Joined,
    Left,
    Message,
    Ping,
    Pong,
    Say,
    ServerFrame,
    Shutdown,
    StatusReply,
    StatusRequest,
    encode,
    v1,
)
from chatctl.server.config import ServerConfig
from chatctl.server.events import UserJoined, UserLeft
from chatctl.server.listener import ChatServer
from tests.support import FACTOR, async_wait_until, within

HOST = "127.0.0.1"

# --------------------------------------------------------------------------- helpers


class Peer:
    """A joined ChatClient plus one iterator over what it receives."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.frames = aiter(client)
        self.seen: list[ServerFrame] = []

    @property
    def name(self) -> str:
        return self.client.name

    async def next(self, timeout: float = 5.0) -> ServerFrame:
        frame: ServerFrame = await within(anext(self.frames), timeout)  # type: ignore[assignment]
        self.seen.append(frame)
        return frame

    async def expect(self, kind: type[Any], timeout: float = 5.0) -> Any:
        """The next frame, which must be of ``kind``."""
        frame = await self.next(timeout)
        assert isinstance(frame, kind), f"{self.name}: expected {kind.__name__}, got {frame!r}"
        return frame

    async def messages(self, count: int, timeout: float = 5.0) -> list[Message]:
        """The next ``count`` messages, skipping join and leave notices."""
        found: list[Message] = []
        while len(found) < count:
            frame = await self.next(timeout)
            if isinstance(frame, Message):
                found.append(frame)
            else:
                assert isinstance(frame, Joined | Left), frame
        return found

    async def rest(self, timeout: float = 5.0) -> list[ServerFrame]:
        """Every frame until the receive loop ends quietly."""

        async def collect() -> list[ServerFrame]:
            return [frame async for frame in self.frames]

        frames: list[ServerFrame] = await within(collect(), timeout)  # type: ignore[assignment]
        self.seen.extend(frames)
        return frames


class Raw:
    """A raw TCP client speaking (or not) the protocol by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = v1.server_frame_decoder()  # raw sockets here speak version 1

    @classmethod
    async def open(cls, port: int) -> Raw:
        reader, writer = await within(asyncio.open_connection(HOST, port))  # type: ignore[misc]
        return cls(reader, writer)

    async def send(self, *items: bytes | Frame) -> None:
        for item in items:
            self.writer.write(item if isinstance(item, bytes) else encode(item))
        await within(self.writer.drain())

    async def read(self, timeout: float = 5.0) -> ServerFrame | None:
        """The next frame from the server, or None at end of stream."""

        async def go() -> ServerFrame | None:
            while True:
                frame = self.decoder.next_frame()
                if frame is not None:
                    return frame
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    return None
                if not data:
                    return None
                self.decoder.feed(data)

        return await within(go(), timeout)  # type: ignore[return-value]

    async def expect(self, kind: type[Any], timeout: float = 5.0) -> Any:
        frame = await self.read(timeout)
        assert isinstance(frame, kind), f"expected {kind.__name__}, got {frame!r}"
        return frame

    async def expect_error(self, code: ErrorCode, timeout: float = 5.0) -> Error:
        frame = await self.expect(Error, timeout)
        assert frame.code == code, frame
        return frame  # type: ignore[no-any-return]

    async def expect_eof(self, timeout: float = 5.0) -> None:
        frame = await self.read(timeout)
        assert frame is None, f"expected the connection to close, got {frame!r}"

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


@pytest.fixture
async def join(server: Any) -> AsyncIterator[Callable[[str], Awaitable[Peer]]]:
    """``await join("alice")``: a Peer joined to the fixture server, closed afterwards."""
    peers: list[Peer] = []

    async def _join(name: str) -> Peer:
        peer = Peer(await within(ChatClient.join(HOST, server.port, name)))  # type: ignore[arg-type]
        peers.append(peer)
        return peer

    yield _join
    for peer in peers:
        await peer.client.close()


@pytest.fixture
async def raw(server: Any) -> AsyncIterator[Callable[[], Awaitable[Raw]]]:
    """``await raw()``: a raw socket to the fixture server, closed afterwards."""
    opened: list[Raw] = []

    async def _open() -> Raw:
        conn = await Raw.open(server.port)
        opened.append(conn)
        return conn

    yield _open
    for conn in opened:
        await conn.close()


def free_port() -> int:
    """A loopback port on which, a moment later, nothing listens."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def has_controls(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text if ch != "\n")


# --------------------------------------------------------------------------- ordering


async def test_three_clients_broadcast_exactly_once_in_one_order(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    a, b, c = await join("ann"), await join("ben"), await join("cat")
    peers = [a, b, c]
    # Everyone first sees the joins of those who came after them (and their own).
    for peer, expected in ((a, ["ann", "ben", "cat"]), (b, ["ben", "cat"]), (c, ["cat"])):
        joins = [await peer.expect(Joined) for _ in expected]
        assert [j.name for j in joins] == expected

    per_sender = 50
    total = per_sender * len(peers)

    async def send_all(peer: Peer) -> list[str]:
        sent = []
        for k in range(per_sender):
            text = f"{peer.name} #{k:02d}"
            await peer.client.say(text)
            sent.append(text)
            await asyncio.sleep(0)  # let the other senders interleave
        return sent

    async def receive_all(peer: Peer) -> list[Message]:
        return [await peer.expect(Message, timeout=10.0) for _ in range(total)]

    receivers = [asyncio.create_task(receive_all(p)) for p in peers]
    sent = await within(asyncio.gather(*(send_all(p) for p in peers)), 10.0)
    got: list[list[Message]] = await within(asyncio.gather(*receivers), 15.0)  # type: ignore[assignment]

    expected_texts = Counter(t for texts in sent for t in texts)  # type: ignore[union-attr]
    assert len(expected_texts) == total
    reference = got[0]
    seqs = [m.seq for m in reference]
    assert all(x < y for x, y in itertools.pairwise(seqs)), "seq strictly increasing"
    for peer, messages in zip(peers, got, strict=True):
        # Exactly once each...
        assert Counter(m.text for m in messages) == expected_texts, peer.name
        # ... in the same order for everyone, sender included.
        assert [(m.seq, m.name, m.text) for m in messages] == [
            (m.seq, m.name, m.text) for m in reference
        ], peer.name
    for peer, texts in zip(peers, sent, strict=True):  # type: ignore[arg-type]
        own = [m.text for m in reference if m.name == peer.name]
        assert own == texts, f"{peer.name}'s messages out of the order sent"
        assert all(m.text.startswith(f"{m.name} #") for m in reference)
    # The three senders really interleaved (otherwise this test proves little).
    names = [m.name for m in reference]
    switches = sum(1 for x, y in itertools.pairwise(names) if x != y)
    assert switches >= 2
    assert server.hub.messages_relayed == total


# --------------------------------------------------------------------------- join / leave


async def test_welcome_lists_who_is_online_and_joins_are_announced(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice = await join("alice")
    [lobby] = alice.client.joined
    assert (lobby.room, lobby.users, lobby.online) == ("#lobby", ["alice"], 1)
    assert alice.client.welcome.name == "alice"
    assert alice.client.welcome.version == PROTOCOL_VERSION
    own = await alice.expect(Joined)
    assert (own.name, own.room) == ("alice", "#lobby")
    assert own.seq == lobby.seq + 1

    bob = await join("Bob")
    assert sorted(bob.client.joined[0].users) == ["Bob", "alice"]
    seen_by_alice = await alice.expect(Joined)
    assert seen_by_alice.name == "Bob"
    assert seen_by_alice.seq > own.seq
    assert (await bob.expect(Joined)).name == "Bob"
    assert [e.name for e in server.events if isinstance(e, UserJoined)] == ["alice", "Bob"]


@pytest.mark.server_config(announce_limit=2)
async def test_above_the_announce_limit_joins_and_leaves_pass_quietly(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice, bob = await join("alice"), await join("bob")
    assert [(await alice.expect(Joined)).name, (await alice.expect(Joined)).name] == [
        "alice",
        "bob",
    ]
    bob_joined = await bob.expect(Joined)

    carol = await join("carol")  # a room of 3 > 2: nobody is told, carol's own join neither
    assert carol.client.joined[0].online == 3
    assert carol.client.joined[0].seq == bob_joined.seq
    await carol.client.say("hi")
    message = await alice.expect(Message)  # not a join: the seq runs on without a gap
    assert (message.name, message.seq) == ("carol", bob_joined.seq + 1)
    assert (await carol.expect(Message)).seq == message.seq

    await carol.client.leave()  # leaves a room of 3: quiet too
    await carol.rest()
    await bob.client.leave()  # leaves a room of 2: announced
    left = await alice.expect(Left)
    assert (left.name, left.seq) == ("bob", message.seq + 1)
    assert [e.name for e in server.events if isinstance(e, UserJoined)] == ["alice", "bob", "carol"]
    assert [e.name for e in server.events if isinstance(e, UserLeft)] == ["carol", "bob"]


async def test_a_welcome_names_at_most_welcome_names_people(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    for n in range(WELCOME_NAMES + 1):
        conn = await raw()
        await conn.send(Hello(version=1, name=f"u{n}"))
        welcome = await conn.expect(v1.Welcome)
        assert welcome.online == n + 1
    assert welcome.users == [f"u{n}" for n in range(WELCOME_NAMES)]  # the longest present
    assert len(server.hub.members) == WELCOME_NAMES + 1


async def test_leave_is_announced_as_quit(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice, bob = await join("alice"), await join("bob")
    await alice.expect(Joined)
    await alice.expect(Joined)
    await bob.expect(Joined)

    await bob.client.leave()
    left = await alice.expect(Left)
    assert (left.name, left.reason) == ("bob", "quit")
    assert await bob.rest() == []  # bob's loop ends quietly, without ConnectionLost
    assert "bob" not in server.hub.members
    assert server.hub.leave_reasons["quit"] == 1
    assert [(e.name, e.reason) for e in server.events if isinstance(e, UserLeft)] == [
        ("bob", "quit")
    ]
    status = await within(fetch_status(HOST, server.port))
    assert [u.name for u in status.users] == ["alice"]  # type: ignore[attr-defined]


async def test_a_socket_that_just_closes_is_announced_as_dropped(
    server: Any, join: Callable[[str], Awaitable[Peer]], raw: Callable[[], Awaitable[Raw]]
) -> None:
    alice = await join("alice")
    await alice.expect(Joined)
    conn = await raw()
    await conn.send(Hello(version=1, name="rawley"))
    welcome = await conn.expect(v1.Welcome)
    assert sorted(welcome.users) == ["alice", "rawley"]
    assert (await alice.expect(Joined)).name == "rawley"

    await conn.close()
    left = await alice.expect(Left)
    assert (left.name, left.reason) == ("rawley", "dropped")
    await async_wait_until(lambda: len(server.hub.connections) == 1, what="the raw session gone")
    assert server.hub.leave_reasons == {"dropped": 1}


# --------------------------------------------------------------------------- names


async def test_name_taken_is_case_insensitive(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    await join("Alice")
    for other in ("alice", "ALICE", "Alice"):
        with pytest.raises(Refused) as info:
            await within(ChatClient.join(HOST, server.port, other))
        assert info.value.code == ErrorCode.NAME_TAKEN
    assert list(server.hub.members) == ["alice"]
    assert server.hub.members["alice"].name == "Alice"
    await async_wait_until(
        lambda: len(server.hub.connections) == 1, what="refused connections closed"
    )


@pytest.mark.parametrize("name", ["", "bad name", "\u0430\u043b\u0438\u0441\u0430", "x" * 33])
async def test_invalid_name_is_refused_before_touching_the_network(name: str) -> None:
    # Nothing listens there: had the client connected first, it would raise Unreachable.
    with pytest.raises(Refused) as info:
        await within(ChatClient.join(HOST, free_port(), name))
    assert info.value.code == ErrorCode.INVALID_NAME


@pytest.mark.parametrize("name", ["bad name", "\u0430\u043b\u0438\u0441\u0430", "x" * 33, ""])
async def test_server_refuses_invalid_names_itself(
    server: Any, raw: Callable[[], Awaitable[Raw]], name: str
) -> None:
    conn = await raw()
    await conn.send(Hello(version=1, name=name))
    await conn.expect_error(ErrorCode.INVALID_NAME)
    await conn.expect_eof()
    assert server.hub.members == {}


async def test_twenty_simultaneous_joins_with_one_name_exactly_one_wins(server: Any) -> None:
    names = ["carol", "Carol", "CAROL", "cArOl"] * 5
    results = await within(
        asyncio.gather(
            *(ChatClient.join(HOST, server.port, n) for n in names), return_exceptions=True
        ),
        10.0,
    )
    winners = [r for r in results if isinstance(r, ChatClient)]  # type: ignore[union-attr]
    losers = [r for r in results if not isinstance(r, ChatClient)]  # type: ignore[union-attr]
    try:
        assert len(winners) == 1, results
        assert len(losers) == 19
        assert all(isinstance(r, Refused) and r.code == ErrorCode.NAME_TAKEN for r in losers)
        assert list(server.hub.members) == ["carol"]
        status = await within(fetch_status(HOST, server.port))
        assert len(status.users) == 1  # type: ignore[attr-defined]
    finally:
        for client in winners:
            await client.close()


# --------------------------------------------------------------------------- handshake errors


async def test_unsupported_version_is_refused_and_closed(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Hello(version=99, name="vera"))
    error = await conn.expect_error(ErrorCode.UNSUPPORTED_VERSION)
    assert str(PROTOCOL_VERSION) in error.message
    await conn.expect_eof()
    assert server.hub.members == {}


async def test_say_before_hello_is_not_joined_and_the_connection_stays(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Say(text="hello?"))
    await conn.expect_error(ErrorCode.NOT_JOINED)
    await conn.send(Hello(version=1, name="late"))
    await conn.expect(v1.Welcome)
    assert (await conn.expect(Joined)).name == "late"
    assert server.hub.messages_relayed == 0


async def test_hello_twice_is_already_joined(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Hello(version=1, name="twice"))
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    await conn.send(Hello(version=1, name="again"))
    await conn.expect_error(ErrorCode.ALREADY_JOINED)
    await conn.send(Ping())
    await conn.expect(Pong)
    assert list(server.hub.members) == ["twice"]


@pytest.mark.server_config(max_errors=100)
async def test_garbage_gets_error_frames_and_the_connection_stays_usable(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    garbage: list[tuple[bytes, ErrorCode]] = [
        (b"this is not json\n", ErrorCode.INVALID_FRAME),
        (b"GET / HTTP/1.1\r\n", ErrorCode.INVALID_FRAME),
        (b"\xff\xfe\xfd\n", ErrorCode.INVALID_UTF8),
        (b'{"type":"warp"}\n', ErrorCode.UNKNOWN_TYPE),
        (b'{"type":"say"}\n', ErrorCode.INVALID_FRAME),
        (b"[" * 10_000 + b"\n", ErrorCode.INVALID_FRAME),
        (b'{"type":"hello","version":' + b"9" * 50 + b',"name":"x"}\n', ErrorCode.INVALID_FRAME),
    ]
    for line, code in garbage:
        await conn.send(line)
        await conn.expect_error(code)
    # All at once, too: one error per line, in order.
    await conn.send(b"".join(line for line, _ in garbage))
    for _, code in garbage:
        await conn.expect_error(code)
    await conn.send(b"\r\n\n", Hello(version=1, name="survivor"))
    assert (await conn.expect(v1.Welcome)).name == "survivor"
    await conn.expect(Joined)
    await conn.send(Say(text="still here"))
    assert (await conn.expect(Message)).text == "still here"


async def test_invalid_utf8_inside_a_string_gets_an_error_frame_not_a_dropped_connection(
    server: Any, raw: Callable[[], Awaitable[Raw]], join: Callable[[str], Awaitable[Peer]]
) -> None:
    watcher = await join("watcher")
    await watcher.expect(Joined)
    conn = await raw()
    await conn.send(Hello(version=1, name="mallory"))
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    await watcher.expect(Joined)
    await conn.send(b'{"type":"say","text":"caf\xe9"}\n')  # Latin-1, not UTF-8
    await conn.expect_error(ErrorCode.INVALID_UTF8)
    await conn.send(Say(text="café"))
    assert (await conn.expect(Message)).text == "café"
    assert (await watcher.expect(Message)).text == "café"
    assert "mallory" in server.hub.members


async def test_an_overlong_frame_gets_frame_too_long_and_the_connection_closes(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Hello(version=1, name="longo"))
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    conn.writer.write(b'{"type":"say","text":"' + b"a" * (MAX_FRAME_BYTES + 10))
    await conn.expect_error(ErrorCode.FRAME_TOO_LONG)
    await conn.expect_eof()
    await async_wait_until(lambda: server.hub.members == {}, what="longo removed")
    assert server.hub.leave_reasons == {"frame_too_long": 1}


async def test_ping_is_answered_before_and_after_joining(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Ping())
    await conn.expect(Pong)
    await conn.send(Hello(version=1, name="pinger"), Ping())
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    await conn.expect(Pong)


# --------------------------------------------------------------------------- status


async def test_status_without_joining(server: Any) -> None:
    status = await within(fetch_status(HOST, server.port))
    assert isinstance(status, StatusReply)
    assert status.users == []
    assert status.server.users == 0
    assert status.server.connections == 1  # the status request itself
    assert status.server.messages_relayed == 0
    assert status.server.protocol == PROTOCOL_VERSION
    assert status.server.version == __version__
    assert status.server.uptime_seconds >= 0
    assert server.hub.members == {}


async def test_status_reports_users_and_counters(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice, bob = await join("alice"), await join("bob")
    for text in ("one", "two"):
        await alice.client.say(text)
    await bob.client.say("three")
    for peer in (alice, bob):
        assert [m.text for m in await peer.messages(3)] == ["one", "two", "three"], peer.name

    status = await within(fetch_status(HOST, server.port))
    assert isinstance(status, StatusReply)
    users = {u.name: u for u in status.users}
    assert set(users) == {"alice", "bob"}
    assert users["alice"].messages_sent == 2
    assert users["bob"].messages_sent == 1
    for user in users.values():
        assert re.fullmatch(r"127\.0\.0\.1:\d+", user.address), user.address
        assert user.idle_seconds >= 0
        assert user.connected_at <= time.time()
    ports = {int(u.address.rsplit(":", 1)[1]) for u in users.values()}
    assert len(ports) == 2
    assert status.server.users == 2
    assert status.server.connections == 3  # two members plus this request
    assert status.server.messages_relayed == 3

    await bob.client.leave()
    await alice.expect(Left)
    status = await within(fetch_status(HOST, server.port))
    assert [u.name for u in status.users] == ["alice"]  # type: ignore[attr-defined]
    assert status.server.leave_reasons == {"quit": 1}  # type: ignore[attr-defined]


async def test_status_on_a_raw_socket_then_join(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(StatusRequest())
    reply = await conn.expect(StatusReply)
    assert reply.server.connections == 1
    await conn.send(Hello(version=1, name="curious"), StatusRequest())
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    reply = await conn.expect(StatusReply)
    assert [u.name for u in reply.users] == ["curious"]


# --------------------------------------------------------------------------- messages


async def test_a_multi_line_message_is_one_message(
    join: Callable[[str], Awaitable[Peer]],
) -> None:
    alice, bob = await join("alice"), await join("bob")
    await alice.expect(Joined)
    await alice.expect(Joined)
    await bob.expect(Joined)
    await alice.client.say("first line\nsecond line\r\nthird line")
    await alice.client.say("after")
    for peer in (alice, bob):
        first = await peer.expect(Message)
        assert first.text == "first line\nsecond line\nthird line"
        assert first.name == "alice"
        assert (await peer.expect(Message)).text == "after"


async def test_escape_sequences_arrive_escaped(
    join: Callable[[str], Awaitable[Peer]],
) -> None:
    alice, bob = await join("alice"), await join("bob")
    await bob.expect(Joined)
    hostile = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m\u202eevil\x7f\nline two"
    await alice.client.say(hostile)
    message = await bob.expect(Message)
    assert message.text == (
        "\\x1b[2J\\x1b]52;c;cm0gLXJmIH4=\\x07\\x9b31m\\u202eevil\\x7f\nline two"
    )
    assert not has_controls(message.text)
    assert "\u202e" not in message.text


async def test_the_server_escapes_before_relaying_even_to_raw_readers(
    raw: Callable[[], Awaitable[Raw]],
) -> None:
    """What a plain ``nc`` reader gets must already be inert: the server escapes on entry."""
    reader, writer = await raw(), await raw()
    await reader.send(Hello(version=1, name="reader"))
    await reader.expect(v1.Welcome)
    await reader.expect(Joined)
    await writer.send(Hello(version=1, name="writer"))
    await writer.expect(v1.Welcome)
    assert (await reader.expect(Joined)).name == "writer"
    await writer.send(Say(text="\x1b]0;title\x07\x9b2J\u2066x\tend\r\nnext"))
    message = await reader.expect(Message)
    assert message.text == "\\x1b]0;title\\x07\\x9b2J\\u2066x    end\nnext"
    assert not has_controls(message.text)


async def test_message_limits_are_enforced_by_the_server_too(
    server: Any, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(Hello(version=1, name="loud"))
    await conn.expect(v1.Welcome)
    await conn.expect(Joined)
    await conn.send(Say(text="   \n  "))
    await conn.expect_error(ErrorCode.EMPTY_MESSAGE)
    await conn.send(Say(text="é" * 2049))
    await conn.expect_error(ErrorCode.MESSAGE_TOO_LONG)
    await conn.send(Say(text="\n".join("x" * 101)))
    await conn.expect_error(ErrorCode.MESSAGE_TOO_LONG)
    await conn.send(Say(text="fine"))
    assert (await conn.expect(Message)).text == "fine"
    assert server.hub.messages_relayed == 1


async def test_client_cleans_what_a_hostile_server_sends() -> None:
    """The client trusts the server no more than the server trusts clients."""

    async def evil(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(
            b'{"type":"welcome","version":2,"name":"me","server":"evil\\u0007"}\n'
            b'{"type":"room","room":"#lobby","seq":0,"users":["me","\\u001b[2J"],"online":2}\n'
            b'{"type":"message","seq":1,"time":0.0,"name":"\\u202eboss",'
            b'"text":"a\\u001b]52;c;eA==\\u0007\\nb"}\n'
        )
        await writer.drain()
        await reader.read()  # until the client goes
        writer.close()

    fake = await asyncio.start_server(evil, HOST, 0)
    try:
        port = fake.sockets[0].getsockname()[1]
        client = await within(ChatClient.join(HOST, port, "me"))
        assert isinstance(client, ChatClient)
        try:
            assert client.joined[0].users == ["me", "\\x1b[2J"]
            assert client.welcome.server == "evil\\x07"
            message = await within(anext(aiter(client)))
            assert isinstance(message, Message)
            assert message.name == "\\u202eboss"
            assert message.text == "a\\x1b]52;c;eA==\\x07\nb"
        finally:
            await client.close()
    finally:
        fake.close()


# --------------------------------------------------------------------------- shutdown


async def test_shutdown_notifies_everyone_and_ends_their_loops(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    peers = [await join(n) for n in ("ann", "ben", "cat")]
    await async_wait_until(lambda: len(server.hub.members) == 3, what="three members")
    loops = [asyncio.create_task(p.rest(timeout=10.0)) for p in peers]
    started = time.monotonic()
    await within(server.stop(), 2.0)
    assert time.monotonic() - started < 2.0 * FACTOR
    results = await within(asyncio.gather(*loops), 5.0)
    for peer, frames in zip(peers, results, strict=True):  # type: ignore[call-overload]
        assert isinstance(frames[-1], Shutdown), (peer.name, frames)
        assert peer.client.shutdown == frames[-1]
        # No Left notices for the others during a shutdown, only the notice itself.
        assert not any(isinstance(f, Left) for f in frames), frames
    assert server.hub.connections == set()
    assert server.hub.leave_reasons == {"shutdown": 3}


async def test_stop_is_prompt_with_a_client_that_never_reads(
    server: Any, join: Callable[[str], Awaitable[Peer]], raw: Callable[[], Awaitable[Raw]]
) -> None:
    alice = await join("alice")
    stuck = await raw()
    await stuck.send(Hello(version=1, name="stuck"))  # ... and never reads
    await async_wait_until(lambda: len(server.hub.members) == 2, what="stuck joined")
    started = time.monotonic()
    await within(server.stop(), 2.0)
    assert time.monotonic() - started < 2.0 * FACTOR
    assert server.hub.connections == set()
    frames = await alice.rest()
    assert isinstance(frames[-1], Shutdown)


#: Unsent bytes far past what the kernel takes for a peer that never reads (its receive
#: window stays near tcp_rmem's initial 128 KiB; the send buffer is at most 4 MiB).
STUCK_BACKLOG = 16 * 1024 * 1024


async def test_stop_aborts_a_stuck_reader_whose_buffers_are_full() -> None:
    """Shutdown waits the grace period for a reader that never reads, then aborts it."""
    config = ServerConfig(host=HOST, port=0, max_queue_bytes=512 * 1024 * 1024, rate=0)
    srv = ChatServer(config)
    await srv.start()
    stuck = sender = None
    try:
        stuck, sender = await Raw.open(srv.port), await Raw.open(srv.port)
        await stuck.send(Hello(version=1, name="stuck"))
        await sender.send(Hello(version=1, name="sender"))
        await async_wait_until(lambda: len(srv.hub.members) == 2, what="both joined")
        session = srv.hub.members["stuck"].session
        batch = encode(Say(text="x" * 4000)) * 100
        end = time.monotonic() + 20 * FACTOR
        # Neither reads: flood until the server holds more for the stuck reader than the
        # kernel will take: a small backlog may still drain into the socket during the
        # grace period, and stop() would rightly not wait (this test failed so, once).
        while (
            session.transport is not None
            and session.transport.get_write_buffer_size() < STUCK_BACKLOG
        ):
            assert time.monotonic() < end, "the server never had to buffer"
            await sender.send(batch)
        assert srv.hub.connections
        assert session.bytes_queued > 0
        started = time.monotonic()
        await within(srv.stop(), 2.0 + config.shutdown_grace)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0 * FACTOR
        assert elapsed >= config.shutdown_grace * 0.9  # the grace period was honoured
        assert srv.hub.connections == set()
        assert srv.hub.leave_reasons == {"shutdown": 2}
    finally:
        await srv.stop()
        for conn in (stuck, sender):
            if conn is not None:
                conn.writer.transport.abort()


# --------------------------------------------------------------------------- failures


async def test_connection_lost_when_the_server_aborts_without_notice(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice = await join("alice")
    await alice.expect(Joined)
    session = server.hub.members["alice"].session
    assert session.transport is not None
    session.transport.abort()
    with pytest.raises(ConnectionLost):
        await alice.rest()
    assert alice.client.shutdown is None


async def test_unreachable_when_nothing_listens() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as info:
        await within(ChatClient.join(HOST, port, "alice", timeout=3.0))
    assert str(port) in str(info.value)
    with pytest.raises(Unreachable):
        await within(fetch_status(HOST, port, timeout=3.0))


async def test_leave_then_server_records_quit_not_dropped(
    server: Any, join: Callable[[str], Awaitable[Peer]]
) -> None:
    alice = await join("alice")
    await alice.expect(Joined)
    await alice.client.leave()
    await alice.client.leave()  # twice is harmless
    assert await alice.rest() == []
    await async_wait_until(lambda: server.hub.connections == set(), what="alice gone")
    assert server.hub.leave_reasons == {"quit": 1}
