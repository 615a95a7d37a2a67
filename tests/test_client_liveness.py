"""The client core notices a dead server, and keeps track of what the server never relayed.

Fake servers here are raw asyncio servers on 127.0.0.1, port 0, that answer the
handshake and then do only what a test asks (not even pong); the live server is
the in-process ``server`` fixture. Waits are deadlines, scaled by FACTOR.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatctl.client import (
    ChatClient,
    ClientError,
    ConnectionLost,
    Refused,
    Unconfirmed,
    Unreachable,
    backoff,
    worth_retrying,
)
from chatctl.protocol import (
    ClientFrame,
    Error,
    ErrorCode,
    Hello,
    Joined,
    Message,
    Ping,
    Pong,
    RoomState,
    Say,
    ServerFrame,
    Welcome,
    clean_text,
    client_frame_decoder,
    encode,
)
from tests.support import async_wait_until, within

HOST = "127.0.0.1"

Answer = Callable[[ClientFrame], list[ServerFrame]]


def silent(frame: ClientFrame) -> list[ServerFrame]:
    return []


class FakeServer:
    """Welcomes one client, then answers each frame with ``answer(frame)`` and nothing else."""

    def __init__(self, answer: Answer = silent, chatter: float | None = None) -> None:
        self.answer = answer
        self.chatter = chatter  # if set, a message from "bob" every so many seconds
        self.received: list[ClientFrame] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.seq = itertools.count(2)

    async def start(self) -> FakeServer:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    def _message(self, name: str, text: str) -> Message:
        return Message(seq=next(self.seq), time=time.time(), name=name, text=text)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        decoder = client_frame_decoder()
        chat = None
        try:
            while data := await reader.read(65536):
                decoder.feed(data)
                while (frame := decoder.next_frame()) is not None:
                    self.received.append(frame)
                    if isinstance(frame, Hello):
                        writer.write(encode(Welcome(version=2, name=frame.name, server="fake")))
                        state = RoomState(room="#lobby", seq=0, users=[frame.name], online=1)
                        writer.write(encode(state))
                        joined = Joined(seq=1, time=time.time(), name=frame.name, room="#lobby")
                        writer.write(encode(joined))
                        if self.chatter is not None:
                            chat = asyncio.create_task(self._chat(writer, self.chatter))
                    for reply in self.answer(frame):
                        writer.write(encode(reply))
        except ConnectionError:
            pass
        finally:
            if chat is not None:
                chat.cancel()
            writer.close()

    async def _chat(self, writer: asyncio.StreamWriter, every: float) -> None:
        while not writer.is_closing():
            await asyncio.sleep(every)
            writer.write(encode(self._message("bob", "still here")))

    def drop(self) -> None:
        """Cut every connection at once, as a killed server would."""
        for writer in self.writers:
            writer.transport.abort()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)


@contextlib.asynccontextmanager
async def fake_server(answer: Answer = silent, chatter: float | None = None) -> AsyncIterator[Any]:
    fake = await FakeServer(answer, chatter).start()
    try:
        yield fake
    finally:
        await fake.close()


async def join(port: int, name: str = "alice", **kwargs: float) -> ChatClient:
    client = await within(ChatClient.join(HOST, port, name, **kwargs))
    assert isinstance(client, ChatClient)
    return client


async def receive_all(client: ChatClient) -> list[ServerFrame]:
    return [frame async for frame in client]


# --------------------------------------------------------------------------- liveness


async def test_a_server_that_stops_answering_is_given_up() -> None:
    async with fake_server() as dead:
        client = await join(dead.port, ping_interval=0.3, ping_timeout=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionLost) as info:
                await within(receive_all(client), 2.0)
            elapsed = time.monotonic() - started
        finally:
            await client.close()
    assert elapsed >= 0.5  # 0.3 s of silence, a ping, 0.3 s more: not before
    assert str(info.value) == (
        f"connection to {HOST}:{dead.port} lost: the server stopped answering (no reply for 0.3 s)"
    )
    assert info.value.reason == "the server stopped answering (no reply for 0.3 s)"
    assert Ping() in dead.received, dead.received


async def test_a_live_server_keeps_a_quiet_client(server: Any) -> None:
    alice = await join(server.port, ping_interval=0.3, ping_timeout=0.3)
    bob = await join(server.port, "bob")
    try:
        frames = aiter(alice)
        assert isinstance(await within(anext(frames)), Joined)  # alice's own
        assert isinstance(await within(anext(frames)), Joined)  # bob's
        # Quiet for 1.5 s: several pings at 0.3 s, each answered with pong in time.
        pending = asyncio.ensure_future(anext(frames))
        done, _ = await asyncio.wait({pending}, timeout=1.5)
        assert not done, f"alice's loop ended: {pending.result() if done else ''}"
        await bob.say("you are still there")
        message = await within(pending)
        assert isinstance(message, Message)
        assert message.text == "you are still there"
        assert "alice" in server.hub.members
    finally:
        await alice.close()
        await bob.close()


async def test_any_frame_counts_as_life_not_only_pong() -> None:
    # A frame every 0.5 s; the client pings after 0.3 s of silence and would give up
    # 0.5 s later: only the chatter (never a pong) keeps the connection.
    async with fake_server(chatter=0.5) as chatty:
        client = await join(chatty.port, ping_interval=0.3, ping_timeout=0.5)
        try:
            loop = asyncio.ensure_future(receive_all(client))
            done, _ = await asyncio.wait({loop}, timeout=1.5)
            assert not done, loop.exception() if done else ""
            assert Ping() in chatty.received  # it did ping, and got no pong
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        finally:
            await client.close()


# --------------------------------------------------------------------------- unconfirmed


def echo(name: str, refuse: str = "") -> Answer:
    """Echo each say as a message from ``name``; refuse the text ``refuse`` with an error."""
    counter = itertools.count(2)

    def answer(frame: ClientFrame) -> list[ServerFrame]:
        if not isinstance(frame, Say):
            return []
        if frame.text == refuse:
            error = Error(ErrorCode.MESSAGE_TOO_LONG, "too long for this server", id=frame.id)
            return [error]
        text = clean_text(frame.text)
        return [Message(next(counter), time.time(), name, text, frame.room, frame.id)]

    return answer


async def test_what_comes_back_is_confirmed_on_a_real_server(server: Any) -> None:
    client = await join(server.port)
    loop = asyncio.ensure_future(receive_all(client))
    try:
        for text in ("one", "two\r\nlines", "esc \x1b[31m red", "one"):
            await client.say(text)
        assert len(client.unconfirmed) == 4
        assert await within(client.wait_confirmed(5.0))
        assert list(client.unconfirmed) == []
    finally:
        await client.close()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_a_refused_message_is_no_longer_pending() -> None:
    async with fake_server(echo("alice", refuse="refuse me")) as fake:
        client = await join(fake.port)
        loop = asyncio.ensure_future(receive_all(client))
        try:
            for text in ("first", "refuse me", "last"):
                await client.say(text)
            assert await within(client.wait_confirmed(5.0))
        finally:
            await client.close()
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)


async def test_lines_never_echoed_are_left_when_the_connection_drops() -> None:
    async with fake_server(echo("alice", refuse="")) as fake:
        client = await join(fake.port)
        loop = asyncio.ensure_future(receive_all(client))
        try:
            await client.say("echoed")
            assert await within(client.wait_confirmed(5.0))
            fake.answer = silent  # the server hangs from now on
            await client.say("lost one")
            await client.say("lost two")
            started = time.monotonic()
            assert not await within(client.wait_confirmed(0.3))  # nothing for 0.3 s
            assert time.monotonic() - started >= 0.25
            fake.drop()
            with pytest.raises(ConnectionLost):
                await within(loop)
            assert client.ended
            assert not await within(client.wait_confirmed(5.0))  # at once: the loop is over
            assert client.unconfirmed.take() == ["lost one", "lost two"]
            assert list(client.unconfirmed) == []
        finally:
            await client.close()


async def test_wait_confirmed_lasts_as_long_as_frames_keep_coming() -> None:
    """Each echo comes 0.12 s after the last: 1 s in all, well past the idle timeout."""

    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = client_frame_decoder()
        seq = itertools.count(1)
        while data := await reader.read(65536):
            decoder.feed(data)
            while (frame := decoder.next_frame()) is not None:
                if isinstance(frame, Hello):
                    writer.write(encode(Welcome(version=2, name="alice", server="x")))
                    state = RoomState(room="#lobby", seq=0, users=["alice"], online=1)
                    writer.write(encode(state))
                elif isinstance(frame, Say):
                    await asyncio.sleep(0.12)
                    message = Message(next(seq), 0.0, "alice", frame.text, frame.room, frame.id)
                    writer.write(encode(message))
        writer.close()

    slow = await asyncio.start_server(slow_echo, HOST, 0)
    try:
        client = await join(slow.sockets[0].getsockname()[1])
        loop = asyncio.ensure_future(receive_all(client))
        try:
            for i in range(8):
                await client.say(f"line {i}")
            started = time.monotonic()
            assert await within(client.wait_confirmed(0.4), 10.0)
            assert time.monotonic() - started >= 0.8
        finally:
            await client.close()
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    finally:
        slow.close()


def test_unconfirmed_bookkeeping_is_by_id() -> None:
    pending = Unconfirmed()
    assert not pending
    ids = [pending.sent(text) for text in ("a", "b\r\nc", "a", "d")]
    assert len(set(ids)) == 4  # one id per message, even for the same text
    assert list(pending) == ["a", "b\r\nc", "a", "d"]
    assert pending.echoed(ids[2])  # the second "a": by id, not by text
    assert list(pending) == ["a", "b\r\nc", "d"]
    assert pending.refused(ids[1]) == "b\r\nc"
    assert not pending.echoed(ids[1])  # gone already
    assert not pending.echoed("someone-else.1")  # another client's id: not ours
    assert not pending.echoed(None)
    assert pending.refused(None) is None
    other = Unconfirmed()
    assert other.sent("a") not in ids  # another connection's ids differ
    request = pending.new_id()
    assert request not in ids
    assert list(pending) == ["a", "d"]  # a request id is not a pending message
    assert len(pending) == 2
    assert pending.take() == ["a", "d"]
    assert pending.take() == []


# --------------------------------------------------------------------------- reconnecting


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert list(itertools.islice(backoff(), 9)) == [1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert list(itertools.islice(backoff(0.5, 3, 10), 5)) == [0.5, 1.5, 4.5, 10, 10]
    assert list(itertools.islice(backoff(), 10_000))[-1] == 30  # no overflow, no drift


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (Unreachable("cannot reach x: connection refused"), True),
        (ConnectionLost("x closed the connection"), True),
        (Refused(ErrorCode.NAME_TAKEN, "that name is taken"), True),
        (Refused(ErrorCode.SERVER_FULL, "full"), True),
        (Refused("some_future_code", "later"), True),
        (Refused(ErrorCode.INVALID_NAME, "bad name"), False),
        (Refused(ErrorCode.UNSUPPORTED_VERSION, "v2 only"), False),
        (ClientError("x sent something that is not chatctl"), False),
    ],
)
def test_which_failures_are_worth_another_attempt(error: ClientError, retry: bool) -> None:
    assert worth_retrying(error) is retry


async def test_unreachable_has_a_short_reason_for_the_reconnect_notice() -> None:
    fake = await FakeServer().start()
    port = fake.port
    await fake.close()
    with pytest.raises(Unreachable) as info:
        await within(ChatClient.join(HOST, port, "alice", timeout=3.0))
    assert info.value.reason == "connection refused"
    assert f"{HOST}:{port}" in str(info.value)


async def test_a_ping_from_the_server_is_answered() -> None:
    async with fake_server() as fake:
        client = await join(fake.port)
        loop = asyncio.ensure_future(receive_all(client))
        try:
            fake.writers[0].write(encode(Ping()))
            await async_wait_until(lambda: Pong() in fake.received, what="a pong")
        finally:
            await client.close()
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
