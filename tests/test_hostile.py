"""The hostile suite: one bad client never hurts the room.

Real sockets against a real ``chatctl serve`` with tiny limits set by its options
(``served(...)``), or against the in-process ``server`` fixture where a test needs
to look inside. Raw sockets (``Conn``) play misbehaving clients; a client that
never reads is a plain blocking socket with a shrunken receive buffer
(``stuck_socket``), because an asyncio stream would keep reading into its own
buffer. Every wait polls a condition until a deadline (scaled by
CHATCTL_TEST_TIMEOUT_FACTOR), never a fixed sleep; durations the server stamps
(message and leave ``time``) are measured with its stamps, the rest with the
test's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chatctl.protocol import (
    Bye,
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
    Welcome,
    encode,
    server_frame_decoder,
)
from tests.support import (
    FACTOR,
    PipedClient,
    ServeProcess,
    async_wait_until,
    deadline,
    run_chatctl,
    within,
)
from tests.wire import Wire, welcomed

HOST = "127.0.0.1"
STAMP = r"\[\d\d:\d\d:\d\d\]"
KIB = 1024
MIB = 1024 * KIB

# --------------------------------------------------------------------------- helpers


def assert_clean_log(text: str) -> None:
    """No traceback, no asyncio complaint: the server handled everything itself."""
    for bad in (
        "Traceback",
        "Exception in callback",
        "exception was never retrieved",
        "Fatal Python error",
        "internal error",
    ):
        assert bad not in text, f"{bad!r} in the server log:\n{text}"


@contextmanager
def served(*args: str) -> Iterator[ServeProcess]:
    """A real ``chatctl serve`` with these options; afterwards: stopped cleanly, log clean."""
    server = ServeProcess(*args)
    try:
        yield server
    except BaseException:
        server.stop()
        raise
    code = server.stop()
    log = server.log.text()
    assert code == 0, f"serve exited {code}:\n{log}"
    assert_clean_log(log)


def status_json(port: int) -> dict[str, Any]:
    """``chatctl status --json``, as a user runs it."""
    result = run_chatctl("status", "--port", str(port), "--json", timeout=10)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def leave_reasons(port: int) -> dict[str, int]:
    reasons = status_json(port)["server"]["leave_reasons"]
    assert isinstance(reasons, dict)
    return reasons


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} line")


def reset_peak_memory(pid: int) -> None:
    """Set VmHWM back to the current RSS (Linux >= 4.0), so it shows the peak from now on."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


def say(text: str) -> bytes:
    return encode(Say(text=text))


def hello(name: str) -> bytes:
    return encode(Hello(version=1, name=name))


def stuck_socket(port: int, name: str, rcvbuf: int = 4096) -> socket.socket:
    """A joined client that never reads a byte: a plain socket with a tiny receive buffer.

    SO_RCVBUF is set before connecting, so the window it advertises stays small.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5 * FACTOR)
    sock.connect((HOST, port))
    sock.sendall(hello(name))
    return sock


def reset_on_close(sock: socket.socket) -> None:
    """Make close() send RST, as the kernel does for a killed process with unread data."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def tls_client_hello() -> bytes:
    """The bytes a real TLS client sends first (a ClientHello), from Python's own ssl."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="chat.example")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    data = outgoing.read()
    assert data[:1] == b"\x16", data[:16]
    return data


class Conn:
    """A raw TCP client speaking (or not) the protocol by hand; ``frames`` keeps all it read.

    Plain non-blocking sockets with ``loop.sock_*``, not asyncio streams: a
    StreamReader that sees a reset raises at once and drops what it had buffered,
    which would lose an ``error`` frame the server did send before closing.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.decoder = server_frame_decoder()
        self.frames: list[ServerFrame] = []
        self.eof = False
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int) -> Conn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await within(asyncio.get_running_loop().sock_connect(sock, (HOST, port)))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, *items: bytes | Frame) -> None:
        data = b"".join(item if isinstance(item, bytes) else encode(item) for item in items)
        await within(self.loop.sock_sendall(self.sock, data))

    async def send_all_or_reset(self, data: bytes, chunk: int = 256 * KIB) -> None:
        """Send ``data`` in chunks until done or the server ends the connection."""
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(data), chunk):
                await within(self.loop.sock_sendall(self.sock, data[start : start + chunk]))

    async def _next(self) -> ServerFrame | None:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                self.frames.append(frame)
                return frame
            if self.eof:
                return None
            try:
                data = await self.loop.sock_recv(self.sock, 256 * KIB)
            except ConnectionError:
                data = b""
            if not data:
                self.eof = True
                continue
            self.decoder.feed(data)

    async def read(self, timeout: float = 5.0) -> ServerFrame | None:
        """The next frame, or None once the connection has ended (EOF or reset)."""
        return await within(self._next(), timeout)  # type: ignore[return-value]

    async def expect(self, kind: type[Any], timeout: float = 5.0) -> Any:
        frame = await self.read(timeout)
        assert isinstance(frame, kind), f"expected {kind.__name__}, got {frame!r}"
        return frame

    async def expect_error(self, code: str, timeout: float = 5.0) -> Error:
        frame = await self.expect(Error, timeout)
        assert frame.code == code, frame
        return frame  # type: ignore[no-any-return]

    async def expect_eof(self, timeout: float = 5.0) -> None:
        frame = await self.read(timeout)
        assert frame is None, f"expected the connection to end, got {frame!r}"

    async def until(
        self, predicate: Callable[[ServerFrame], object], timeout: float = 5.0
    ) -> list[ServerFrame]:
        """Frames read until one satisfies ``predicate`` (included); fails at EOF."""

        async def go() -> list[ServerFrame]:
            got: list[ServerFrame] = []
            while True:
                frame = await self._next()
                assert frame is not None, f"connection ended before the frame; read {got!r}"
                got.append(frame)
                if predicate(frame):
                    return got

        return await within(go(), timeout)  # type: ignore[return-value]

    async def join(self, name: str) -> Welcome:
        await self.send(hello(name))
        welcome: Welcome = await self.expect(Welcome)
        await self.until(lambda f: isinstance(f, Joined) and f.name == name)
        return welcome

    async def alive(self) -> None:
        """Still connected and answered: a ping gets its pong (other frames may come first)."""
        await self.send(Ping())
        await self.until(lambda f: isinstance(f, Pong))

    async def round_trip(
        self, text: str, timeout: float = 5.0, *, back: str | None = None
    ) -> list[ServerFrame]:
        """Say ``text`` and read until it comes back (as ``back``); the frames read on the way."""
        await self.send(say(text))
        back = text if back is None else back
        return await self.until(lambda f: isinstance(f, Message) and f.text == back, timeout)

    def background(self) -> None:
        """Read everything into ``frames`` from now on, in a task; then use ``wait``."""

        async def drain() -> None:
            while await self._next() is not None:
                pass

        self.task = asyncio.create_task(drain())

    async def wait(self, predicate: Callable[[ServerFrame], object], timeout: float = 5.0) -> Any:
        """With ``background`` reading: the first frame so far that satisfies ``predicate``."""
        found: list[ServerFrame] = []

        def seen() -> bool:
            found.extend(f for f in self.frames if predicate(f))
            return bool(found)

        try:
            await async_wait_until(seen, timeout, "a frame")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last frames read: {self.frames[-3:]!r}") from None
        return found[0]

    async def stop_background(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def messages(self) -> list[Message]:
        return [f for f in self.frames if isinstance(f, Message)]

    def abort(self) -> None:
        """Close with a reset, as the kernel does for a killed process with unread data."""
        if self.sock.fileno() >= 0:
            reset_on_close(self.sock)
            self.sock.close()

    async def close(self) -> None:
        await self.stop_background()
        self.sock.close()


async def status_of(port: int) -> StatusReply:
    """One status query on a raw socket: the quick way to look while a test runs."""
    conn = await Conn.open(port)
    try:
        await conn.send(StatusRequest())
        frames = await conn.until(lambda f: isinstance(f, StatusReply))
        reply = frames[-1]
        assert isinstance(reply, StatusReply)
        return reply
    finally:
        await conn.close()


def queued(reply: StatusReply, name: str) -> int | None:
    for user in reply.users:
        if user.name == name:
            return user.bytes_queued
    return None


def server_now(reply: StatusReply) -> float:
    """The server's clock when it answered (same clock as frames' ``time``)."""
    return reply.server.started_at + reply.server.uptime_seconds


def left(frames: list[ServerFrame], name: str) -> Left | None:
    for frame in frames:
        if isinstance(frame, Left) and frame.name == name:
            return frame
    return None


def padded(index: int, size: int = 2 * KIB) -> str:
    head = f"{index:06d} "
    return head + "x" * (size - len(head))


@pytest.fixture
async def conns() -> AsyncIterator[list[Conn]]:
    """Raw connections a test opens, aborted afterwards whatever happened."""
    opened: list[Conn] = []
    yield opened
    for conn in opened:
        await conn.stop_background()
        conn.abort()
    await asyncio.sleep(0)  # let the transports' connection_lost run before the loop closes


@pytest.fixture
def socks() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


@pytest.fixture
def clients() -> Iterator[list[PipedClient]]:
    started: list[PipedClient] = []
    yield started
    for client in started:
        client.kill()


async def opened(conns: list[Conn], port: int) -> Conn:
    conn = await Conn.open(port)
    conns.append(conn)
    return conn


async def joined(conns: list[Conn], port: int, name: str) -> Conn:
    conn = await opened(conns, port)
    await conn.join(name)
    return conn


async def caught_up(watcher: Conn, sent: int, ahead: int) -> None:
    """Wait until ``watcher`` has read all but ``ahead`` of the ``sent`` messages."""
    await async_wait_until(
        lambda: sent - len(watcher.messages()) < ahead, 10.0, "the watcher to catch up"
    )


async def push_until(
    sender: Conn,
    watcher: Conn,
    done: Callable[[], object],
    *,
    batch: int = 32,
    size: int = 2 * KIB,
    ahead: int = 1000,
    limit_bytes: int = 40 * MIB,
) -> int:
    """Send numbered messages in batches until ``done()``; returns how many were sent.

    The test paces itself on ``watcher``: never more than ``ahead`` messages in
    flight, so a reading client is never the slow one.
    """
    sent = 0
    while not done():
        assert sent * size < limit_bytes, f"{sent} messages sent and still not done"
        await caught_up(watcher, sent, ahead)
        await sender.send(b"".join(say(padded(i, size)) for i in range(sent, sent + batch)))
        sent += batch
        await asyncio.sleep(0)  # let the readers run between batches
    return sent


def assert_all_in_order(messages: list[Message], sent: int, sender: str = "sender") -> None:
    ours = [m for m in messages if m.name == sender]
    assert [m.text[:6] for m in ours] == [f"{i:06d}" for i in range(sent)], "lost or reordered"
    assert all(a.seq < b.seq for a, b in itertools.pairwise(messages))


# --------------------------------------------------------------------------- slow consumers


async def room_with_a_stuck_reader(
    conns: list[Conn], socks: list[socket.socket], port: int
) -> tuple[Conn, Conn]:
    """watcher and sender (both reading in the background) and ``stuck``, who never reads."""
    watcher = await joined(conns, port, "watcher")
    sender = await joined(conns, port, "sender")
    socks.append(stuck_socket(port, "stuck"))
    await watcher.until(lambda f: isinstance(f, Joined) and f.name == "stuck")
    watcher.background()
    sender.background()
    return watcher, sender


async def test_slow_consumer_over_the_hard_limit_is_cut_at_once(
    conns: list[Conn], socks: list[socket.socket]
) -> None:
    args = ("--rate", "0", "--max-queue", str(64 * KIB))
    # A soft limit that could never fire during this test: only the hard one can cut.
    with served(*args, "--soft-queue", str(64 * MIB), "--soft-queue-time", "600") as srv:
        watcher, sender = await room_with_a_stuck_reader(conns, socks, srv.port)

        def flood_went_on_past_the_cut() -> bool:
            gone = left(watcher.frames, "stuck")
            return gone is not None and any(m.seq > gone.seq for m in watcher.messages())

        # "At once": cut while the flood was still going, not by a timer later. The flood
        # stops only once the watcher has seen the cut *and* a flood message after it, so
        # a server that cut only when the flood ends fails push_until's bound (40 MiB);
        # stopping at the cut alone raced the last batch against the leave frame.
        sent = await push_until(sender, watcher, flood_went_on_past_the_cut)
        await sender.send(say("after"))
        await watcher.wait(lambda f: isinstance(f, Message) and f.text == "after", 10.0)
        gone = left(watcher.frames, "stuck")
        assert gone is not None
        assert gone.reason == "slow_consumer"
        messages = watcher.messages()
        assert messages[-1].text == "after"
        assert_all_in_order(messages[:-1], sent)
        assert gone.time - messages[0].time < 5.0 * FACTOR
        await sender.wait(lambda f: isinstance(f, Message) and f.text == "after", 10.0)
        assert [m.text[:6] for m in sender.messages()] == [m.text[:6] for m in messages]
        status = status_json(srv.port)
        assert [u["name"] for u in status["users"]] == ["watcher", "sender"]
        assert status["server"]["leave_reasons"] == {"slow_consumer": 1}
        srv.log.wait_for(r"- stuck left \(slow_consumer\)")


async def test_slow_consumer_over_the_soft_limit_is_cut_after_the_soft_time(
    conns: list[Conn], socks: list[socket.socket]
) -> None:
    soft, soft_time = 16 * KIB, 0.5
    args = ("--rate", "0", "--max-queue", str(256 * MIB))  # the hard limit never fires
    with served(*args, "--soft-queue", str(soft), "--soft-queue-time", str(soft_time)) as srv:
        watcher, sender = await room_with_a_stuck_reader(conns, socks, srv.port)
        sent = 0
        while True:  # push until the server holds more than ``soft`` bytes for stuck
            reply = await status_of(srv.port)
            if (queued(reply, "stuck") or 0) > soft:
                break
            assert sent < 20_000, "the stuck client's queue never grew"
            await caught_up(watcher, sent, 1000)
            await sender.send(b"".join(say(padded(i)) for i in range(sent, sent + 64)))
            sent += 64
        # Over the soft limit, and still in the room; nothing more is sent from now on.
        assert left(watcher.frames, "stuck") is None
        gone = await watcher.wait(lambda f: isinstance(f, Left) and f.name == "stuck", 10.0)
        assert gone.reason == "slow_consumer"
        # The server starts the soft clock at its first timer sweep over the limit, which
        # is no earlier than when it went over, and we looked just after that: so the cut
        # comes about soft_time after our look (less a little), never at once.
        held = gone.time - server_now(reply)
        assert held >= soft_time * 0.6, f"cut {held:.3f} s after going over: not the soft rule"
        assert held < soft_time + 2.0 * FACTOR
        await sender.send(say("after"))
        await watcher.wait(lambda f: isinstance(f, Message) and f.text == "after")
        assert_all_in_order(watcher.messages()[:-1], sent)
        assert leave_reasons(srv.port) == {"slow_consumer": 1}


@pytest.mark.server_config(
    rate=0, max_queue_bytes=64 * KIB, soft_queue_bytes=16 * KIB, soft_queue_seconds=600.0
)
async def test_two_hundred_clients_and_one_that_never_reads(
    server: Any, conns: list[Conn], socks: list[socket.socket]
) -> None:
    """199 readers get all 20 messages in order while the server cuts the 200th."""
    socks.append(stuck_socket(server.port, "stuck", rcvbuf=2048))
    await async_wait_until(lambda: "stuck" in server.hub.members, what="stuck joined")
    stuck = server.hub.members["stuck"].session
    readers = [await opened(conns, server.port) for _ in range(199)]
    for k, conn in enumerate(readers):
        await conn.send(hello(f"r{k:03d}"))
    for k, conn in enumerate(readers):
        await conn.until(lambda f, k=k: isinstance(f, Joined) and f.name == f"r{k:03d}", 10.0)
        conn.background()
    assert len(server.hub.members) == 200

    # Fill the stuck client's kernel buffers and start its server-side queue, with replies
    # that go to it alone (status replies listing 200 users, ~35 KB each), one request at a
    # time, stopping well short of the 64 KiB cut: past 16 KiB, one more reply fits.
    while stuck.bytes_queued <= 16 * KIB:
        heard = stuck.last_heard
        socks[0].sendall(encode(StatusRequest()))
        await async_wait_until(lambda h=heard: stuck.last_heard != h, what="the request read")
        await asyncio.sleep(0)  # one loop iteration: the reply is flushed
        assert not stuck.closing, "cut while filling: the test needs a new fill step"
    assert stuck.bytes_queued < 64 * KIB

    sender = readers[0]  # 20 x 3 KiB: past the 64 KiB cut from anything over 16 KiB
    await sender.send(b"".join(say(padded(i, 3 * KIB)) for i in range(20)))
    for conn in readers:
        await conn.wait(lambda f: isinstance(f, Message) and f.text.startswith("000019"), 10.0)
    for k, conn in enumerate(readers):
        messages = conn.messages()
        assert [m.text[:6] for m in messages] == [f"{i:06d}" for i in range(20)], k
        assert all(m.name == "r000" for m in messages)
        # Everyone saw the stuck client go, and why.
        gone = await conn.wait(lambda f: isinstance(f, Left) and f.name == "stuck")
        assert gone.reason == "slow_consumer"
    assert server.hub.leave_reasons == {"slow_consumer": 1}
    assert len(server.hub.members) == 199


# --------------------------------------------------------------------------- framing


async def test_a_20_mb_line_is_refused_without_eating_memory_and_nothing_after_it_counts(
    conns: list[Conn],
) -> None:
    with served("--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        # Warm the server up (a join, a message, a near-limit frame refused) before measuring.
        warm = await joined(conns, srv.port, "warm")
        await warm.send(say("x" * 30_000))
        await warm.expect_error(ErrorCode.MESSAGE_TOO_LONG)
        await warm.round_trip("warm")
        await warm.close()
        await watcher.until(lambda f: isinstance(f, Left) and f.name == "warm")
        before = memory_kib(srv.proc.pid)
        reset_peak_memory(srv.proc.pid)  # a line held whole, then freed, shows in the peak

        attacker = await joined(conns, srv.port, "longo")
        attacker.background()
        stream = (
            b'{"type":"say","text":"'
            + b"a" * (20 * MIB)
            + b'\n{"type":"say","text":"sneaky"}\n'
            + hello("sneaky")
            + say("sneaky too")
        )
        await attacker.send_all_or_reset(stream)
        error = await attacker.wait(lambda f: isinstance(f, Error))
        assert error.code == ErrorCode.FRAME_TOO_LONG
        await async_wait_until(lambda: attacker.eof, what="the attacker's connection closed")
        gone = await watcher.until(lambda f: isinstance(f, Left) and f.name == "longo")
        assert gone[-1].reason == "frame_too_long"
        peak = memory_kib(srv.proc.pid, "VmHWM")
        assert peak - before < 2 * 1024, f"RSS grew by {peak - before} KiB at its peak"

        # Nothing of what followed was relayed: the watcher's next message is its own.
        frames = await watcher.round_trip("sentinel")
        assert [type(f) for f in frames] == [Message], frames
        status = status_json(srv.port)
        assert status["server"]["messages_relayed"] == 2  # "warm" and "sentinel"
        assert [u["name"] for u in status["users"]] == ["watcher"]
        assert status["server"]["leave_reasons"] == {"dropped": 1, "frame_too_long": 1}


@pytest.mark.server_config(max_frame_bytes=1024, rate=0)
@pytest.mark.parametrize("ending", [b"", b'"}\n'], ids=["no-newline", "newline"])
@pytest.mark.parametrize("split", [None, 1, 7, 1000], ids=["whole", "by-1", "by-7", "by-1000"])
async def test_nothing_after_an_overlong_frame_is_taken_as_a_frame(
    server: Any, conns: list[Conn], ending: bytes, split: int | None
) -> None:
    watcher = await joined(conns, server.port, "watcher")
    attacker = await joined(conns, server.port, "longo")
    stream = b'{"type":"say","text":"' + b"a" * 1100 + ending + say("sneaky") + encode(Bye())
    await attacker.send_all_or_reset(stream, split or len(stream))
    await attacker.expect_error(ErrorCode.FRAME_TOO_LONG)
    await attacker.expect_eof()
    gone = await watcher.until(lambda f: isinstance(f, Left) and f.name == "longo")
    assert gone[-1].reason == "frame_too_long"  # not "quit": the bye was not read either
    frames = await watcher.round_trip("sentinel")
    assert [type(f) for f in frames] == [Message], frames
    assert server.hub.messages_relayed == 1


# --------------------------------------------------------------------------- message limits


async def test_message_too_long_is_refused_whole_and_the_connection_kept(
    conns: list[Conn],
) -> None:
    limit, lines = 64, 3
    with served("--max-message", str(limit), "--max-lines", str(lines), "--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        talker = await joined(conns, srv.port, "talker")
        await watcher.until(lambda f: isinstance(f, Joined) and f.name == "talker")
        accepted = [
            "a" * limit,
            "é" * (limit // 2),  # 64 bytes in 32 characters
            "a" * (limit - 2) + "é",  # the two-byte character ends exactly at the limit
            "a" * (limit - 4) + "😀",  # so does a four-byte one
            "x\nx\nx",
            "x\r\nx\r\nx",  # CRLF is one line break
        ]
        refused = [
            "a" * (limit + 1),
            "a" * (limit - 1) + "é",  # 64 characters but 65 bytes: cut inside a character?
            "a" * (limit - 3) + "😀",  # 64 characters, 65 bytes
            "é" * (limit // 2) + "a",
            "x\nx\nx\nx",
            "x\rx\rx\rx",  # lone CRs count as line breaks too
            "\n".join("x" * 20 for _ in range(lines + 1)),
        ]
        for text in refused:
            await talker.send(say(text))
            await talker.expect_error(ErrorCode.MESSAGE_TOO_LONG)
            await talker.alive()  # kept
        for text in accepted:
            frames = await talker.round_trip(text, back=text.replace("\r\n", "\n"))
            assert [type(f) for f in frames] == [Message], frames
        # The watcher got the accepted ones whole (CRLF normalised) and nothing of the
        # refused ones, not even a truncated part, before its own sentinel.
        frames = await watcher.round_trip("sentinel")
        assert all(isinstance(f, Message) for f in frames), frames
        got = [f.text for f in frames if isinstance(f, Message)]
        assert got == [t.replace("\r\n", "\n") for t in accepted] + ["sentinel"]
        status = status_json(srv.port)
        assert status["server"]["messages_relayed"] == len(accepted) + 1
        assert {u["name"] for u in status["users"]} == {"watcher", "talker"}
        assert status["server"]["leave_reasons"] == {}


# --------------------------------------------------------------------------- malformed input

DEEP_LIST = b"[" * 30_000
DEEP_DICT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
HUGE = b"9" * 4_400  # past the 4300 digits at which Python's int() gives up

#: Recoverable garbage, each with its documented code (docs/protocol.md, "Error codes").
MALFORMED: list[tuple[str, bytes, str]] = [
    ("bytes that are not UTF-8", b"\xff\xfe\xfd", ErrorCode.INVALID_UTF8),
    ("Latin-1 in a string", b'{"type":"say","text":"caf\xe9"}', ErrorCode.INVALID_UTF8),
    ("overlong UTF-8", b'{"type":"say","text":"\xc0\xaf"}', ErrorCode.INVALID_UTF8),
    ("UTF-8 of a surrogate", b'{"type":"say","text":"\xed\xa0\x80"}', ErrorCode.INVALID_UTF8),
    ("truncated UTF-8", b'{"type":"say","text":"\xe2\x82"}', ErrorCode.INVALID_UTF8),
    ("UTF-8 error in an ignored field", b'{"type":"say","text":"x","y":"\xff"}', "invalid_utf8"),
    ("not JSON", b"hello there", ErrorCode.INVALID_FRAME),
    ("unterminated JSON", b'{"type":"say","text":"x"', ErrorCode.INVALID_FRAME),
    ("trailing bytes", b'{"type":"say","text":"x"} {}', ErrorCode.INVALID_FRAME),
    ("raw tab in a string", b'{"type":"say","text":"a\tb"}', ErrorCode.INVALID_FRAME),
    ("NaN", b'{"type":"say","text":NaN}', ErrorCode.INVALID_FRAME),
    ("NaN in an ignored field", b'{"type":"say","text":"x","n":NaN}', ErrorCode.INVALID_FRAME),
    ("Infinity", b'{"type":"hello","version":Infinity,"name":"x"}', ErrorCode.INVALID_FRAME),
    ("lone surrogate", b'{"type":"say","text":"\\ud800"}', ErrorCode.INVALID_FRAME),
    ("lone low surrogate", b'{"type":"say","text":"x\\udfff"}', ErrorCode.INVALID_FRAME),
    ("lone surrogate, ignored field", b'{"type":"say","text":"x","y":"\\ud800"}', "invalid_frame"),
    ("deeply nested list", DEEP_LIST, ErrorCode.INVALID_FRAME),
    ("deeply nested objects", DEEP_DICT, ErrorCode.INVALID_FRAME),
    (
        "deep nesting in a field",
        b'{"type":"say","text":' + DEEP_LIST[:9000] + b"}",
        "invalid_frame",
    ),
    ("huge integer", b'{"type":"hello","version":' + HUGE + b',"name":"x"}', "invalid_frame"),
    ("huge exponent", b'{"type":"hello","version":1e400,"name":"x"}', ErrorCode.INVALID_FRAME),
    ("negative version", b'{"type":"hello","version":-1,"name":"x"}', ErrorCode.INVALID_FRAME),
    ("float version", b'{"type":"hello","version":1.0,"name":"x"}', ErrorCode.INVALID_FRAME),
    ("bool version", b'{"type":"hello","version":true,"name":"x"}', ErrorCode.INVALID_FRAME),
    ("string version", b'{"type":"hello","version":"1","name":"x"}', ErrorCode.INVALID_FRAME),
    ("missing name", b'{"type":"hello","version":1}', ErrorCode.INVALID_FRAME),
    ("missing text", b'{"type":"say"}', ErrorCode.INVALID_FRAME),
    ("null text", b'{"type":"say","text":null}', ErrorCode.INVALID_FRAME),
    ("number text", b'{"type":"say","text":42}', ErrorCode.INVALID_FRAME),
    ("object text", b'{"type":"say","text":{"t":"x"}}', ErrorCode.INVALID_FRAME),
    ("a JSON array", b'["say","x"]', ErrorCode.INVALID_FRAME),
    ("a JSON string", b'"say"', ErrorCode.INVALID_FRAME),
    ("JSON null", b"null", ErrorCode.INVALID_FRAME),
    ("unknown type", b'{"type":"shout","text":"x"}', ErrorCode.UNKNOWN_TYPE),
    (
        "a server frame type",
        b'{"type":"message","seq":1,"time":0,"name":"a","text":"x"}',
        ErrorCode.UNKNOWN_TYPE,
    ),
    ("missing type", b'{"text":"x"}', ErrorCode.UNKNOWN_TYPE),
    ("numeric type", b'{"type":5,"text":"x"}', ErrorCode.UNKNOWN_TYPE),
    ("null type", b'{"type":null,"text":"x"}', ErrorCode.UNKNOWN_TYPE),
    ("list type", b'{"type":["say"],"text":"x"}', ErrorCode.UNKNOWN_TYPE),
    ("object type", b'{"type":{}}', ErrorCode.UNKNOWN_TYPE),
    ("duplicate type, last wins", b'{"type":"say","text":"x","type":"shout"}', "unknown_type"),
]


async def test_malformed_input_gets_its_documented_code_and_the_connection_is_kept(
    conns: list[Conn],
) -> None:
    with served("--max-errors", "1000", "--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        mallory = await joined(conns, srv.port, "mallory")
        await watcher.until(lambda f: isinstance(f, Joined) and f.name == "mallory")
        for what, line, code in MALFORMED:
            await mallory.send(line + b"\n")
            error = await mallory.read()
            assert isinstance(error, Error), (what, error)
            assert error.code == code, (what, error)
        await mallory.alive()
        # All at once, in one write: one error per line, in order, nothing skipped.
        await mallory.send(b"".join(line + b"\n" for _, line, _ in MALFORMED))
        for what, _, code in MALFORMED:
            error = await mallory.read()
            assert isinstance(error, Error), (what, error)
            assert error.code == code, (what, error)
        # Handshake-level mistakes of a joined client are kept too.
        await mallory.send(say("   "), hello("again"))
        await mallory.expect_error(ErrorCode.EMPTY_MESSAGE)
        await mallory.expect_error(ErrorCode.ALREADY_JOINED)
        await mallory.round_trip("still here")

        # Before joining, too: nothing of it joins or relays; then a hello works.
        early = await opened(conns, srv.port)
        await early.send(say("too early"), *(line + b"\n" for _, line, _ in MALFORMED))
        await early.expect_error(ErrorCode.NOT_JOINED)
        for what, _, code in MALFORMED:
            error = await early.read()
            assert isinstance(error, Error), (what, error)
            assert error.code == code, (what, error)
        await early.join("early")

        # The watcher saw nothing but joins and mallory's one real message.
        frames = await watcher.round_trip("sentinel")
        texts = [f.text for f in frames if isinstance(f, Message)]
        assert texts == ["still here", "sentinel"], frames
        assert all(isinstance(f, Message | Joined) for f in frames), frames
        status = status_json(srv.port)
        assert status["server"]["messages_relayed"] == 2
        assert {u["name"] for u in status["users"]} == {"watcher", "mallory", "early"}
        assert status["server"]["leave_reasons"] == {}


async def test_a_duplicate_key_takes_its_last_value_on_a_real_server(conns: list[Conn]) -> None:
    with served("--rate", "0") as srv:
        talker = await joined(conns, srv.port, "talker")
        await talker.send(b'{"type":"say","type":"ping"}\n')
        await talker.expect(Pong)
        await talker.send(b'{"type":"ping","text":1,"type":"say","text":"last wins"}\n')
        message = await talker.expect(Message)
        assert (message.name, message.text) == ("talker", "last wins")
        await talker.round_trip("still here")


#: What ``str.splitlines()``, log viewers and editors also end a line at, besides \\n and \\r.
LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


async def test_unicode_line_breaks_reach_a_pipe_and_the_log_escaped(
    conns: list[Conn], clients: list[PipedClient]
) -> None:
    with served("--verbose", "--rate", "0") as srv:
        reader = PipedClient("reader", srv.port)
        clients.append(reader)
        reader.joined()
        mallory = await joined(conns, srv.port, "mallory")
        forged = "".join(f"{brk}[12:00:00] admin: forged" for brk in LINE_BREAKS)
        escaped = "ok" + "".join(
            (f"\\x{ord(brk):02x}" if ord(brk) < 0x100 else f"\\u{ord(brk):04x}")
            + "[12:00:00] admin: forged"
            for brk in LINE_BREAKS
        )
        await mallory.send(say("ok" + forged + " end"))
        shown = reader.out.wait_for(r"mallory: ok.* end$").string  # text mode splits at \n only
        assert shown.endswith(f"mallory: {escaped} end"), repr(shown)
        logged = srv.log.wait_for(r"mallory: ok.* end$").string
        assert logged.endswith(f"mallory: {escaped} end"), repr(logged)
        for where in (reader.out.text(), srv.log.text()):
            assert len(where.splitlines()) == len(where.split("\n")), "a forged line break"
        relayed = (await mallory.until(lambda f: isinstance(f, Message)))[-1]
        assert relayed.text == escaped + " end"


HTTP_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: chat.example\r\n\r\n",
    b"GET /",  # not even a whole request line: no newline to wait for
    b"POST /api HTTP/1.1\r\nContent-Length: 1000\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\n",
    b"CONNECT chat.example:443 HTTP/1.1\r\n",
]


async def test_http_and_tls_first_bytes_are_named_and_closed_at_once(conns: list[Conn]) -> None:
    # A handshake timeout far away: any close we see is the sniffing, not a timer.
    with served("--handshake-timeout", "60") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        cases = [(request, ErrorCode.UNEXPECTED_HTTP) for request in HTTP_REQUESTS]
        cases.append((tls_client_hello(), ErrorCode.UNEXPECTED_TLS))
        cases.append((b"\x16\x03\x01", ErrorCode.UNEXPECTED_TLS))  # a record header alone
        for first, code in cases:
            conn = await opened(conns, srv.port)
            await conn.send(first)
            error = await conn.expect(Error, timeout=1.0)
            assert error.code == code, (first[:20], error)
            await conn.expect_eof(timeout=1.0)
        # A real TLS client gets a clean failure, not a hang.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await within(asyncio.open_connection(HOST, srv.port, ssl=context), 2.0)
        frames = await watcher.round_trip("sentinel")
        assert [type(f) for f in frames] == [Message], frames
        reasons = leave_reasons(srv.port)
        assert reasons == {"unexpected_http": len(HTTP_REQUESTS), "unexpected_tls": 3}


async def test_too_many_errors_closes_the_connection_and_nothing_after_is_read(
    conns: list[Conn],
) -> None:
    with served("--max-errors", "3", "--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        noisy = await joined(conns, srv.port, "noisy")
        await watcher.until(lambda f: isinstance(f, Joined) and f.name == "noisy")
        for _ in range(2):  # under the budget: answered and kept
            await noisy.send(b"junk\n")
            await noisy.expect_error(ErrorCode.INVALID_FRAME)
        await noisy.alive()
        # The third error, and in the same write a message that must never be relayed.
        await noisy.send(b"\xff\n", say("sneaky"), b"junk\n")
        await noisy.expect_error(ErrorCode.INVALID_UTF8)
        await noisy.expect_error(ErrorCode.TOO_MANY_ERRORS)
        await noisy.expect_eof(timeout=1.0)
        gone = await watcher.until(lambda f: isinstance(f, Left) and f.name == "noisy")
        assert gone[-1].reason == "too_many_errors"
        assert not any(isinstance(f, Message) for f in gone)

        # A ten-line burst of garbage from a client that never joined: same end.
        spammer = await opened(conns, srv.port)
        await spammer.send(b"x\n" * 10 + hello("spammer"))
        for _ in range(3):
            await spammer.expect_error(ErrorCode.INVALID_FRAME)
        await spammer.expect_error(ErrorCode.TOO_MANY_ERRORS)
        await spammer.expect_eof(timeout=1.0)

        frames = await watcher.round_trip("sentinel")
        assert [type(f) for f in frames] == [Message], frames
        status = status_json(srv.port)
        assert [u["name"] for u in status["users"]] == ["watcher"]
        assert status["server"]["messages_relayed"] == 1
        assert status["server"]["leave_reasons"] == {"too_many_errors": 2}
        srv.log.wait_for(r"- noisy left \(too_many_errors\)")


# --------------------------------------------------------------------------- timeouts


async def test_handshake_timeout_closes_sockets_that_never_say_hello(conns: list[Conn]) -> None:
    with served("--handshake-timeout", "0.5") as srv:
        started = time.monotonic()
        silent = await opened(conns, srv.port)
        partial = await opened(conns, srv.port)
        await partial.send(b'{"type":"hel')  # a slowloris: never a whole line
        pinger = await opened(conns, srv.port)
        await pinger.send(Ping())  # talking, but not joining
        await pinger.expect(Pong)
        member = await joined(conns, srv.port, "member")
        monitor = await opened(conns, srv.port)
        await monitor.send(StatusRequest())  # a status counts as a handshake
        await monitor.expect(StatusReply)
        for conn in (silent, partial, pinger):
            await conn.expect_error(ErrorCode.HANDSHAKE_TIMEOUT, timeout=3.0)
            await conn.expect_eof(timeout=1.0)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.45, f"closed after {elapsed:.2f} s: before the handshake timeout"
        # Those who did greet are kept, well past the timeout.
        await member.alive()
        await monitor.send(StatusRequest())
        reply = await monitor.expect(StatusReply)
        assert [u.name for u in reply.users] == ["member"]
        assert reply.server.leave_reasons == {"handshake_timeout": 3}
        srv.log.wait_for(r"closed 127\.0\.0\.1:\d+: handshake_timeout")


async def test_ping_timeout_drops_the_mute_and_the_half_open_but_not_a_real_client(
    conns: list[Conn], socks: list[socket.socket], clients: list[PipedClient]
) -> None:
    with served("--ping-interval", "0.3", "--ping-timeout", "0.3") as srv:
        alive = PipedClient("alive", srv.port)
        clients.append(alive)
        alive.joined()
        # Reads everything, answers nothing.
        mute = await joined(conns, srv.port, "mute")
        joined_at = time.monotonic()
        # Half-open: neither reads nor answers (like a peer whose network vanished).
        socks.append(stuck_socket(srv.port, "halfopen"))
        before_ping = await mute.until(lambda f: isinstance(f, Ping), 3.0)
        pinged_after = time.monotonic() - joined_at
        await mute.expect_eof(timeout=3.0)
        dropped_after = time.monotonic() - joined_at
        assert pinged_after >= 0.25, f"pinged after {pinged_after:.2f} s of silence"
        assert dropped_after >= pinged_after + 0.2, "dropped before the ping timeout"
        assert not any(isinstance(f, Error) for f in before_ping)
        for name in ("mute", "halfopen"):
            alive.out.wait_for(rf"^{STAMP} \* {name} was disconnected \(stopped answering\)$")
        # Over the same period (several ping intervals) the real client stayed.
        assert alive.proc.poll() is None, alive.everything()
        alive.send("still here")
        alive.out.wait_for(rf"^{STAMP} alive: still here$")
        status = status_json(srv.port)
        assert [u["name"] for u in status["users"]] == ["alive"]
        assert status["server"]["leave_reasons"] == {"ping_timeout": 2}
        assert "lost" not in alive.everything()
        alive.close_stdin()
        assert alive.wait() == 0, alive.everything()


async def test_a_frozen_client_is_dropped_and_says_so_when_it_wakes(
    clients: list[PipedClient],
) -> None:
    """A real ``chatctl join`` stopped with SIGSTOP: to the server, a half-open peer."""
    with served("--ping-interval", "0.3", "--ping-timeout", "0.3") as srv:
        watcher = PipedClient("watcher", srv.port)
        frozen = PipedClient("frozen", srv.port)
        clients.extend((watcher, frozen))
        watcher.joined()
        frozen.joined()
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            watcher.out.wait_for(rf"^{STAMP} \* frozen was disconnected \(stopped answering\)$")
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        code = frozen.wait(timeout=10.0)
        assert code == 6, f"exit {code}\n{frozen.everything()}"
        lost = [line for line in frozen.err.snapshot() if "lost" in line]
        assert len(lost) == 1, frozen.everything()
        assert leave_reasons(srv.port) == {"ping_timeout": 1}
        assert watcher.proc.poll() is None
        watcher.close_stdin()
        assert watcher.wait() == 0, watcher.everything()


# --------------------------------------------------------------------------- flood pacing


def bot_lines(client: PipedClient, name: str = "bot") -> list[str]:
    pattern = re.compile(rf"^{STAMP} {name}: (.*)$")
    return [m.group(1) for line in client.out.snapshot() if (m := pattern.match(line))]


def test_seq_300_into_join_delivers_every_line_in_order(clients: list[PipedClient]) -> None:
    with served("--burst", "20", "--rate", "200") as srv:
        reader = PipedClient("reader", srv.port)
        clients.append(reader)
        reader.joined()
        lines = [str(n) for n in range(1, 301)]
        bot = run_chatctl("join", "bot", "--port", str(srv.port), input="\n".join(lines) + "\n")
        assert bot.returncode == 0, bot.stderr
        assert "not sent" not in bot.stderr, bot.stderr
        reader.out.wait_for(rf"^{STAMP} \* bot left$")
        assert bot_lines(reader) == lines
        # The bot saw its own 300 come back, too.
        assert re.findall(rf"(?m)^{STAMP} bot: (\d+)$", bot.stdout) == lines
        assert status_json(srv.port)["server"]["messages_relayed"] == 300


async def relay_span(port: int, count: int) -> list[Message]:
    """One client sends ``count`` messages in one write; its own copies, as relayed."""
    conn = await Conn.open(port)
    try:
        await conn.join("flood")
        await conn.send(b"".join(say(padded(i, 16)) for i in range(count)))
        frames = await conn.until(
            lambda f: isinstance(f, Message) and f.text == padded(count - 1, 16), 15.0
        )
        return [f for f in frames if isinstance(f, Message)]
    finally:
        await conn.close()


async def test_pacing_really_paces_and_loses_nothing() -> None:
    burst, rate, count = 5, 10.0, 25
    with served("--burst", str(burst), "--rate", str(rate)) as srv:
        messages = await relay_span(srv.port, count)
        assert [m.text for m in messages] == [padded(i, 16) for i in range(count)]
        span = messages[-1].time - messages[0].time  # server-side stamps
        # The hello took one token: burst - 1 at once, then one per 1/rate s.
        expected = (count - burst) / rate
        assert span >= expected * 0.9, f"{count} messages relayed within {span:.2f} s"
        assert span < expected + 2.0 * FACTOR, f"slower than the pace: {span:.2f} s"
        assert all(b.time - a.time < 0.5 for a, b in itertools.pairwise(messages))


async def test_rate_zero_turns_pacing_off() -> None:
    count = 200
    with served("--burst", "5", "--rate", "0") as srv:
        messages = await relay_span(srv.port, count)
        assert [m.text for m in messages] == [padded(i, 16) for i in range(count)]
        span = messages[-1].time - messages[0].time
        assert span < 0.5 * FACTOR, f"{count} messages took {span:.2f} s with pacing off"


async def round_trip_ms(conn: Conn, count: int) -> list[float]:
    """Milliseconds for each of ``count`` messages to come back to their sender, sorted."""
    times = []
    for i in range(count):
        started = time.perf_counter()
        await conn.round_trip(f"ping {i}", 10.0)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


#: A client in its own process: joins, then sends one line over and over, as fast as the
#: kernel takes it, never reading. argv: port, hello line, the line to repeat.
FLOODER = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(sys.argv[2].encode())
data = sys.argv[3].encode() * ((1 << 20) // len(sys.argv[3]))
print("flooding", flush=True)
while True:
    sock.sendall(data)
"""


@pytest.mark.parametrize(
    "line", ["\n", "  \r\n", '{"type":"pong"}\n'], ids=["newlines", "blank-crlf", "pongs"]
)
async def test_a_flood_of_unpaced_lines_does_not_slow_the_room(
    conns: list[Conn], line: str
) -> None:
    """Blank lines and pongs are cheap and never refused, but a stream of them is a flood.

    Pacing charges every frame but ``pong`` and ``bye``, and blank lines are skipped
    before pacing sees them. A member that sends nothing but those, as fast as the
    kernel takes them, must not cost everyone else their latency: it should be paced
    (or cut off) like any other flood.
    """
    with served("--burst", "100") as srv:  # the watcher's own 30 messages stay unpaced
        watcher = await joined(conns, srv.port, "watcher")
        baseline = await round_trip_ms(watcher, 10)
        flooder = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", FLOODER, str(srv.port), hello("flooder").decode(), line),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert flooder.stdout is not None
            assert await within(flooder.stdout.readline()) == b"flooding\n"
            await watcher.until(lambda f: isinstance(f, Joined) and f.name == "flooder")
            during = await round_trip_ms(watcher, 20)
        finally:
            flooder.kill()
            await flooder.wait()
        median = during[len(during) // 2]
        assert median < 10 * FACTOR, (
            f"one client sending {line!r} lines raised the room's round trip from "
            f"{baseline[len(baseline) // 2]:.1f} ms to {median:.1f} ms (median of 20; "
            f"worst {during[-1]:.0f} ms)"
        )


# --------------------------------------------------------------------------- connection limits


async def admitted(conns: list[Conn], port: int) -> Conn | Error:
    """Open a connection: the Conn if the server took it (a ping is answered), else its Error."""
    conn = await opened(conns, port)
    await conn.send(Ping())
    frame = await conn.read(timeout=3.0)
    if isinstance(frame, Pong):
        return conn
    assert isinstance(frame, Error), frame
    await conn.expect_eof(timeout=1.0)  # refused connections are closed at once
    return frame


async def status_when_room(port: int, timeout: float = 5.0) -> tuple[StatusReply, int]:
    """A status reply as soon as the server has room for the query; and how many were refused.

    Polls with a deadline: the server notices closed connections asynchronously.
    """
    end, refused = deadline(timeout), 0
    while True:
        conn = await Conn.open(port)
        try:
            await conn.send(StatusRequest())
            frame = await conn.read(timeout=3.0)
        finally:
            await conn.close()
        if isinstance(frame, StatusReply):
            return frame, refused
        assert isinstance(frame, Error), frame
        assert frame.code in (ErrorCode.SERVER_FULL, ErrorCode.THROTTLED), frame
        refused += 1
        if time.monotonic() > end:
            return await status_of(port), refused  # fails with the refusal in hand
        await asyncio.sleep(0.02)


def refused_join(port: int) -> str:
    """``chatctl join`` refused by the server: exit 8 and one clear line; that line."""
    result = run_chatctl("join", "zed", "--port", str(port), input="hi\n", COLUMNS="80")
    assert result.returncode == 8, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatctl: "), lines[0]
    return lines[0]


async def test_max_clients_refuses_with_server_full(conns: list[Conn]) -> None:
    with served("--max-clients", "3") as srv:
        first = [await admitted(conns, srv.port) for _ in range(3)]
        assert all(isinstance(c, Conn) for c in first), first
        fourth = await admitted(conns, srv.port)
        assert isinstance(fourth, Error)
        assert fourth.code == ErrorCode.SERVER_FULL
        assert "3" in fourth.message
        assert "full" in refused_join(srv.port)
        for conn in first:  # the three inside are unaffected
            assert isinstance(conn, Conn)
            await conn.alive()
        # One leaves: a place is free again (once the server has seen it go).
        assert isinstance(first[0], Conn)
        await first[0].close()
        refusals = 2
        end = deadline(5.0)
        while isinstance(again := await admitted(conns, srv.port), Error):
            assert again.code == ErrorCode.SERVER_FULL
            refusals += 1
            assert time.monotonic() < end, "no place freed after a client left"
        assert isinstance(again, Conn)
        await again.alive()
        for conn in conns:
            await conn.close()
        reply, more = await status_when_room(srv.port)
        assert reply.server.leave_reasons == {"server_full": refusals + more}


async def test_per_address_concurrent_limit_with_limit_loopback(conns: list[Conn]) -> None:
    with served("--limit-loopback", "--max-per-address", "2") as srv:
        first = [await admitted(conns, srv.port) for _ in range(2)]
        assert all(isinstance(c, Conn) for c in first), first
        third = await admitted(conns, srv.port)
        assert isinstance(third, Error)
        assert third.code == ErrorCode.THROTTLED
        assert third.retry_after_ms is not None
        assert third.retry_after_ms > 0
        refused_join(srv.port)
        for conn in first:
            assert isinstance(conn, Conn)
            await conn.alive()
            await conn.close()
        reply, more = await status_when_room(srv.port)
        assert reply.server.leave_reasons == {"throttled": 2 + more}


async def test_new_connections_per_minute_with_limit_loopback(conns: list[Conn]) -> None:
    with served("--limit-loopback", "--max-new-per-minute", "3") as srv:
        for _ in range(3):  # one at a time: never more than one at once
            conn = await admitted(conns, srv.port)
            assert isinstance(conn, Conn), conn
            await conn.close()
        fourth = await admitted(conns, srv.port)
        assert isinstance(fourth, Error)
        assert fourth.code == ErrorCode.THROTTLED
        assert fourth.retry_after_ms is not None
        assert 0 < fourth.retry_after_ms <= 60_000
        line = refused_join(srv.port)
        assert "try again" in line or "too many" in line, line
        srv.log.wait_for(r"refused 127\.0\.0\.1:\d+: throttled")


async def test_loopback_is_exempt_from_the_per_address_limits_by_default(
    conns: list[Conn],
) -> None:
    with served("--max-per-address", "2", "--max-new-per-minute", "3") as srv:
        inside = [await admitted(conns, srv.port) for _ in range(8)]
        assert all(isinstance(c, Conn) for c in inside), inside
        status = status_json(srv.port)
        assert status["server"]["connections"] == 9
        assert status["server"]["leave_reasons"] == {}


# --------------------------------------------------------------------------- dying clients


async def test_clients_killed_mid_frame_leave_as_dropped_and_the_server_carries_on(
    conns: list[Conn], clients: list[PipedClient]
) -> None:
    with served("--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        # A real client process, killed with -9 while joined.
        victim = PipedClient("victim", srv.port)
        clients.append(victim)
        victim.joined()
        # Raw clients that die half-way through a frame: with FIN, and with a reset.
        halves = {
            "halffin": b'{"type":"say","text":"half a mess',
            "halfrst": b'{"type":"say","text":"half a mess',
            # A whole JSON object but no newline: the frame never ended, so it never counts.
            "nonewline": b'{"type":"say","text":"no newline"}',
        }
        dying = {name: await joined(conns, srv.port, name) for name in halves}
        for name, data in halves.items():
            await dying[name].send(data)
        await watcher.until(lambda f: isinstance(f, Joined) and f.name == "nonewline")
        victim.proc.kill()
        await dying["halffin"].close()
        dying["halfrst"].abort()
        await dying["nonewline"].close()
        frames: list[ServerFrame] = []
        for _ in range(4):
            frames += await watcher.until(lambda f: isinstance(f, Left))
        gone = {f.name: f.reason for f in frames if isinstance(f, Left)}
        assert gone == dict.fromkeys(["victim", *halves], "dropped")
        assert not any(isinstance(f, Message) for f in frames), frames
        frames = await watcher.round_trip("carrying on")
        assert [type(f) for f in frames] == [Message], frames
        status = status_json(srv.port)
        assert status["server"]["leave_reasons"] == {"dropped": 4}
        assert status["server"]["messages_relayed"] == 1
        assert [u["name"] for u in status["users"]] == ["watcher"]


async def test_500_silent_sockets_do_not_block_a_real_join(
    socks: list[socket.socket], clients: list[PipedClient]
) -> None:
    with served("--max-clients", "1000") as srv:
        for _ in range(500):
            sock = socket.create_connection((HOST, srv.port), timeout=5 * FACTOR)
            socks.append(sock)
        alice = PipedClient("alice", srv.port)
        clients.append(alice)
        alice.joined()
        alice.send("through the crowd")
        alice.out.wait_for(rf"^{STAMP} alice: through the crowd$")
        status = status_json(srv.port)
        assert status["server"]["connections"] == 502  # the 500, alice, and this query
        alice.close_stdin()
        assert alice.wait() == 0, alice.everything()


# --------------------------------------------------------------------------- server going away


async def test_sigterm_with_a_stuck_client_exits_promptly_and_frees_the_port(
    conns: list[Conn], socks: list[socket.socket]
) -> None:
    server = ServeProcess("--rate", "0", "--soft-queue-time", "600")
    try:
        port = server.port
        watcher, sender = await room_with_a_stuck_reader(conns, socks, port)

        async def stuck_has_a_queue() -> bool:
            return (queued(await status_of(port), "stuck") or 0) > 0

        sent = 0
        while not await stuck_has_a_queue():
            assert sent < 10_000, "the stuck client's queue never grew"
            await caught_up(watcher, sent, 1000)
            await sender.send(b"".join(say(padded(i)) for i in range(sent, sent + 16)))
            sent += 16
        # What ``status --json`` shows: the stuck one's queued bytes, and the others' none.
        status = await asyncio.to_thread(status_json, port)
        queues = {u["name"]: u["bytes_queued"] for u in status["users"]}
        assert queues["stuck"] > 0, queues
        assert set(queues) == {"watcher", "sender", "stuck"}
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.proc.wait, 5 * FACTOR)
        elapsed = time.monotonic() - started
        assert code == 0, server.log.text()
        assert elapsed < 2.0 * FACTOR, f"took {elapsed:.2f} s to stop"
        await watcher.wait(lambda f: isinstance(f, Shutdown))
    finally:
        server.stop()
    log = server.log.text()
    assert_clean_log(log)
    assert "shutting down, 3 users notified" in log
    # The port can be bound again at once, by a new server.
    with served("--port", str(port)) as again:
        assert again.port == port


def test_a_server_killed_with_sigkill_is_noticed_within_a_second(
    clients: list[PipedClient],
) -> None:
    server = ServeProcess()
    try:
        bob = PipedClient("bob", server.port)
        clients.append(bob)
        bob.joined()
        started = time.monotonic()
        server.proc.kill()
        bob.err.wait_for(r"lost", timeout=1.0)
        noticed = time.monotonic() - started
        code = bob.wait()
    finally:
        server.stop()
    assert noticed < 1.0 * FACTOR
    assert code == 6, bob.everything()
    lost = [line for line in bob.everything().splitlines() if "lost" in line]
    assert len(lost) == 1, bob.everything()
    assert f"127.0.0.1:{server.port}" in lost[0]
    assert "Traceback" not in bob.everything()


# --------------------------------------------------------------------------- observability


async def test_status_json_and_the_log_say_why_each_client_left(conns: list[Conn]) -> None:
    args = ("--max-errors", "2", "--handshake-timeout", "0.5", "--max-clients", "4")
    with served(*args, "--rate", "0") as srv:
        watcher = await joined(conns, srv.port, "watcher")
        # quit
        quitter = await joined(conns, srv.port, "quitter")
        await quitter.send(Bye())
        await quitter.expect_eof()
        # dropped
        dropper = await joined(conns, srv.port, "dropper")
        await dropper.close()
        # frame_too_long
        longo = await joined(conns, srv.port, "longo")
        await longo.send_all_or_reset(b"a" * 40_000 + b"\n")
        await longo.expect_error(ErrorCode.FRAME_TOO_LONG)
        # too_many_errors
        noisy = await joined(conns, srv.port, "noisy")
        await noisy.send(b"junk\n" * 2)
        await noisy.until(lambda f: isinstance(f, Error) and f.code == "too_many_errors")
        # unexpected_http, unexpected_tls
        for first in (b"GET / HTTP/1.1\r\n\r\n", tls_client_hello()):
            conn = await opened(conns, srv.port)
            await conn.send(first)
            await conn.expect(Error)
        # handshake_timeout
        silent = await opened(conns, srv.port)
        await silent.expect_error(ErrorCode.HANDSHAKE_TIMEOUT, timeout=3.0)
        # server_full: watcher plus three that greeted, then one too many
        full = []
        for _ in range(3):
            conn = await opened(conns, srv.port)
            await conn.send(StatusRequest())
            await conn.expect(StatusReply)
            full.append(conn)
        refused = await opened(conns, srv.port)
        await refused.expect_error(ErrorCode.SERVER_FULL)
        for conn in full:
            await conn.close()
        for name in ("quitter", "dropper", "longo", "noisy"):
            await watcher.until(lambda f, name=name: isinstance(f, Left) and f.name == name)

        _, refusals = await status_when_room(srv.port)  # once the three have gone
        status = status_json(srv.port)
        assert status["server"]["leave_reasons"] == {
            "quit": 1,
            "dropped": 1,
            "frame_too_long": 1,
            "too_many_errors": 1,
            "unexpected_http": 1,
            "unexpected_tls": 1,
            "handshake_timeout": 1,
            "server_full": 1 + refusals,
        }
        assert [(u["name"], u["bytes_queued"]) for u in status["users"]] == [("watcher", 0)]
        for line in (
            r"- quitter left \(quit\)",
            r"- dropper left \(dropped\)",
            r"- longo left \(frame_too_long\)",
            r"- noisy left \(too_many_errors\)",
            r"closed 127\.0\.0\.1:\d+: unexpected_http",
            r"closed 127\.0\.0\.1:\d+: unexpected_tls",
            r"closed 127\.0\.0\.1:\d+: handshake_timeout",
            r"refused 127\.0\.0\.1:\d+: server_full",
        ):
            srv.log.wait_for(line)


async def test_what_an_error_names_back_is_inert() -> None:
    """An error names the room of the frame it answers, and `forget` answers with a name:
    both came back as sent, terminal codes and 32 KB included (found by a fuzzing helper)."""
    with served("--rate", "0") as srv:
        talker = await Wire.hello(srv.port, "talker")
        await welcomed(talker, "#lobby")
        hostile = "\x1b[2J\u202e\u2028" + "x" * 5000
        await talker.send(type="join", room=hostile, id="j1")
        error = await talker.until("error")
        assert (error["code"], error["id"]) == ("invalid_room", "j1")
        assert not {"\x1b", "\u202e", "\u2028"} & set(error["room"]), error["room"]
        assert len(error["room"]) < 100
        await talker.send(type="forget", name="\x1b[2J", secret="abc")
        refused = await talker.until("error")
        assert refused["code"] == "invalid_name"
        await talker.send(type="say", room="#lobby", text="still here")
        assert (await talker.until("message"))["text"] == "still here"
        await talker.close()
