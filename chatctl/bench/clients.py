"""The generator's connections: a room client (counts what it receives, sends what the pump
tells it to) and an idle client (connects, answers pings, notes the probe).

Receivers count marks and newlines per read instead of parsing lines (see the package
docstring): ``_Client.buffer_updated`` is the hot path. A client in several rooms, or
receiving from several workers, counts one mark per (worker, room) it can receive from.
"""

from __future__ import annotations

import asyncio
import errno
import time
from typing import TYPE_CHECKING, cast

import msgspec

from chatctl.protocol import Hello, Pong, Say, encode

if TYPE_CHECKING:
    from chatctl.bench.worker import _Worker

#: Every message text starts with ``~chatctl-bench~<proc>#<room> ``; nothing else a server
#: sends contains the mark. Counting it is most of a receiver's work, and ``bytes.count``
#: skips ahead by up to the pattern's length: this 15-byte mark is counted 2.8x faster than
#: ``#B``. ``<room>`` is empty in the single-room scenarios.
MARK = b"~chatctl-bench~"
#: The line a raw-mode idle run broadcasts to check that every idle client is really served.
PROBE = b"#PROBE"
_READ_BUFFER = 64 * 1024
#: Connections being opened at once. ncat listens with a backlog of 10: more at once overflow
#: its accept queue and the kernel leaves clients connected on one side only for seconds.
_CONNECTING = 64
_CONNECTING_RAW = 8


def room_mark(proc: int, room: int | None) -> bytes:
    """What starts the text of a message worker ``proc`` sends into ``room``."""
    return MARK + (b"%d# " % proc if room is None else b"%d#%d " % (proc, room))


class _Client(asyncio.BufferedProtocol):
    """One bench client: counts what it receives, sends what the pump tells it to."""

    def __init__(self, worker: _Worker, number: int) -> None:
        self.w = worker
        plan = worker.plan
        layout = plan.layout
        self.number = number
        #: The server this client is on (an index; 0 outside a cluster run).
        self.home = plan.home(number)
        self.name = f"bench{plan.tag}-{number}"
        #: The rooms this client is in (indexes of the layout), and those it sends into.
        self.rooms = layout.rooms_of(number)
        self.sends_to = layout.sends_to(number)
        named = layout.named
        procs = plan.procs
        #: Flat: messages received from worker p in my j-th room at ``j * procs + p``.
        self.marks = [room_mark(p, r if named else None) for r in self.rooms for p in range(procs)]
        self.rx = [0] * len(self.marks)
        self.single = len(self.marks) == 1
        #: Messages sent, by my j-th room.
        self.sent = [0] * len(self.rooms)
        self._prefix = {
            r: (room_mark(plan.index, r if named else None).decode() + f"{number} ", j)
            for j, r in enumerate(self.rooms)
            if r in self.sends_to
        }
        self.buf = bytearray(_READ_BUFFER)
        self.view = memoryview(self.buf)
        self.filled = 0
        self.seq = 0
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False
        self.joined = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        plan = self.w.plan
        if plan.raw:
            self.joined = True
            self.ready.set_result(None)
            return
        layout = plan.layout
        rooms = [str(layout.name(r)) for r in self.rooms] if layout.named else None
        self.transport.write(encode(Hello(version=plan.version, name=self.name, rooms=rooms)))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.filled == len(self.buf):  # a line longer than the buffer (a big welcome)
            self.view.release()
            self.buf = self.buf + bytearray(len(self.buf))
            self.view = memoryview(self.buf)
        return self.view[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic_ns()
        end = self.filled + nbytes
        buf = self.buf
        stop = buf.rfind(b"\n", 0, end) + 1
        if not stop:
            self.filled = end
            return
        marks = buf.count(MARK, 0, stop)
        if marks:
            w = self.w
            rx = self.rx
            if self.single:
                rx[0] += marks
            else:
                for i, mark in enumerate(self.marks):
                    rx[i] += buf.count(mark, 0, stop)
            w.delivered += marks
            w.last_ns = now
            if w.sampling:
                first = buf.find(MARK, 0, stop)
                w.sample(buf, first, now, self.home)
                if marks > 1:
                    w.sample(buf, buf.rfind(MARK, 0, stop), now, self.home)
            w.wake()
        if buf.count(b"\n", 0, stop) != marks:
            self._other_lines(bytes(buf[:stop]))
        rest = end - stop
        if rest:
            buf[:rest] = buf[stop:end]
        self.filled = rest

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed by the server before joining"))
        self.w.client_lost(self)

    # the rare lines

    def _other_lines(self, chunk: bytes) -> None:
        w = self.w
        for line in chunk.split(b"\n"):
            if not line.strip() or MARK in line:
                continue
            w.other += 1
            if w.plan.raw:
                continue  # ncat's "<announce> ..." lines
            try:
                frame = msgspec.json.decode(line)
            except msgspec.DecodeError:
                w.errors["not_json"] += 1
                continue
            if not isinstance(frame, dict):
                continue
            kind = frame.get("type")
            if kind == "welcome":
                self.joined = True
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind == "error":
                code = str(frame.get("code"))
                w.errors[code] += 1
                if not self.joined:
                    if not self.ready.done():
                        self.ready.set_exception(ConnectionRefusedError(code))
                elif self.sends_to:
                    w.refuse(self.sends_to, frame.get("room"))  # a say not relayed
            elif kind == "leave":
                w.leaves[(str(frame.get("name")), str(frame.get("reason")))] += 1
            elif kind == "ping" and self.transport is not None:
                self.transport.write(encode(Pong()))  # long runs: the server checks we live
            elif kind == "shutdown":
                w.errors["shutdown"] += 1

    # sending

    def send_messages(self, count: int, now_ns: int, room: int) -> None:
        """``count`` messages into ``room`` (one of ``sends_to``), stamped ``now_ns``."""
        transport = self.transport
        if transport is None or self.lost:
            return
        w = self.w
        size = w.plan.size
        prefix, j = self._prefix[room]
        texts = []
        for _ in range(count):
            self.seq += 1
            text = f"{prefix}{self.seq} {now_ns} "
            texts.append(text + "x" * max(1, size - len(text)))
        transport.write(self.encode(texts, room))
        self.sent[j] += count
        w.sent += count
        w.sent_room[room] += count

    def encode(self, texts: list[str], room: int) -> bytes:
        """Messages into ``room`` on the wire: ``say`` frames, or plain lines for a relay."""
        plan = self.w.plan
        if plan.raw:
            return "".join(f"{text}\n" for text in texts).encode()
        name = plan.layout.name(room)
        return b"".join(encode(Say(text=text, room=name)) for text in texts)


class _Idle(asyncio.Protocol):
    """An idle client: answers nothing, reads everything, notes its first line and the probe."""

    def __init__(self, worker: _Worker) -> None:
        self.w = worker
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.probed = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        if b'"type":"ping"' in data and self.transport is not None and not self.w.plan.raw:
            self.transport.write(encode(Pong()))
        if not self.answer.done():
            self.head += data
            if b"\n" in self.head:
                self.answer.set_result(self.head.split(b"\n", 1)[0])
        if not self.probed and PROBE in data:
            self.probed = True
            self.w.probed += 1

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.answer.done():
            self.answer.set_exception(ConnectionError("closed by the server"))
        self.w.idle_lost += 1


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]  # an error code the server answered the hello with
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    if isinstance(exc, msgspec.DecodeError):
        return "not_json"
    return "closed"
