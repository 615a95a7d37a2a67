"""The server's link to Redis: publish batches, read the stream back, stay alive.

Three tasks on the server's loop: the publisher sends the queued batch (one
script call; while it is in flight the next iteration's ops gather behind it),
the reader blocks on ``XREAD`` from its cursor and hands each reply to the
``Sink`` in one synchronous call, and the heartbeat keeps this server's key alive
and takes out dead servers' people. A lost connection is noticed by whichever
task sees it first; the others wait; on reconnection the reader goes on from its
cursor (nothing lost, nothing twice), unless Redis lost its data or trimmed past
the cursor: then the sink is told of the gap and starts from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from chatctl.server.backplane import BackplaneError, scripts
from chatctl.server.backplane.ops import Op, encode_ops, entry_ops, op_args

#: Seconds a server's heartbeat key lives, and between heartbeats: a server that dies
#: has its people taken out within about ``ALIVE_MS / 1000 + HEARTBEAT`` seconds.
ALIVE_MS = 6_000
HEARTBEAT = 1.0
#: The stream keeps about this many batches (``MAXLEN ~``): a server that falls
#: further behind is told of a gap.
STREAM_LENGTH = 100_000
#: Ops held while Redis is away, past which a message is refused (``backplane_down``).
MAX_HELD = 10_000
#: Entries read per ``XREAD``; how long one blocks (ms), within the socket timeout.
READ_COUNT = 500
READ_BLOCK_MS = 1000
SOCKET_TIMEOUT = 3.0
#: Ops in one script call at most.
BATCH_OPS = 1000


@dataclass(frozen=True)
class Snapshot:
    """What Redis holds as of stream entry ``last``."""

    last: str
    users: dict[str, str]
    away: dict[str, str]
    rooms: dict[str, dict[str, str]]
    seqs: dict[str, int]
    #: The cluster's identity: claims are the cluster's, keyed by it.
    identity: str


Entry = tuple[str, str, list[tuple[Op, list[int]]]]


class Sink(Protocol):
    """What the link calls on the server (all on the loop, synchronously)."""

    def entries(self, entries: list[Entry], cursor: str) -> None: ...
    def restart(self, snapshot: Snapshot, why: str | None) -> None: ...
    def seeds(self) -> dict[str, int]: ...
    def identity(self) -> str: ...
    def lost(self, why: str) -> None: ...
    def back(self) -> None: ...
    def dead(self, server: str, people: int) -> None: ...
    def given_up(self) -> None: ...
    def broken(self, why: str) -> None: ...
    def servers(self) -> set[str]: ...


_fields = msgspec.json.Encoder()


def _hash(flat: list[bytes]) -> dict[str, str]:
    it = iter(flat)
    return {k.decode(): v.decode() for k, v in zip(it, it, strict=True)}


class Link:
    """One server's backplane connection."""

    def __init__(
        self,
        url: str,
        origin: str,
        announce_limit: int,
        sink: Sink,
        cursor: str | None = None,
        epoch: str | None = None,
        prefix: str = "chatctl:",
    ) -> None:
        self.url = url
        self.origin = origin
        self.prefix = prefix
        self._limit = announce_limit
        self._sink = sink
        #: The last stream entry handed to the sink, and the Redis data it belongs to.
        self.cursor = cursor
        self.epoch = epoch
        self.up = False
        self.reconnects = 0
        #: Seconds between a batch's entry id (Redis's clock) and its reading here.
        self.lag_seconds = 0.0
        self._redis = self._client()
        self._reader = self._client()
        self._publish = self._redis.register_script(scripts.PUBLISH)
        self._snapshot = self._redis.register_script(scripts.SNAPSHOT)
        self._seed = self._redis.register_script(scripts.SEED)
        self._heartbeat = self._redis.register_script(scripts.HEARTBEAT)
        self._reap = self._redis.register_script(scripts.REAP)
        #: Batches to send: (number, ops with their person's name key); the head may be
        #: in flight, and is sent again, same number, if the reply was lost.
        self._queue: deque[tuple[int, list[tuple[Op, str]]]] = deque()
        self._open: list[tuple[Op, str]] = []
        self._counter = time.time_ns() // 1000  # only grows, even across restarts
        self.held = 0
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._delay = 0.05
        self._up_since = 0.0

    def _client(self) -> Redis:
        try:
            return Redis.from_url(
                self.url,
                retry=Retry(NoBackoff(), 0),
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
            )
        except ValueError as exc:
            raise BackplaneError(f"--backplane {self.url}: {exc}") from None

    # start and stop

    async def start(self) -> None:
        """Connect and read the snapshot, or raise BackplaneError (Redis unreachable)."""
        try:
            await self._sync(first=True)
        except (RedisError, OSError) as exc:
            await self.close()
            raise BackplaneError(f"cannot use the backplane {self.url}: {exc}") from None
        self._set_up()
        for loop in (self._read_loop, self._publish_loop, self._heartbeat_loop):
            self._spawn(loop)

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` as a task; should it fail (a bug, not Redis), say so and run it
        again: a dead reader or publisher would hold everything without a word."""
        task = asyncio.get_running_loop().create_task(work())

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if task.cancelled() or self._closing:
                return
            exc = task.exception()
            if exc is not None:
                self._sink.broken(f"{work.__name__}: {exc!r}")
                asyncio.get_running_loop().call_later(READ_BLOCK_MS / 1000, self._respawn, work)

        self._tasks.add(task)
        task.add_done_callback(done)

    def _respawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if not self._closing:
            self._spawn(work)

    async def close(self) -> None:
        """Stop the tasks (each also checks ``_closing``: redis-py may swallow a
        cancellation), send what is queued if Redis is there, and disconnect."""
        self._closing = True
        self._wake.set()
        self._up.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SOCKET_TIMEOUT)
        await self._flush_queue()
        for client in (self._redis, self._reader):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _flush_queue(self) -> None:
        """At shutdown: what is queued (the last leaves) goes out if Redis is there."""
        while self._open:
            self._seal()
        with contextlib.suppress(RedisError, OSError):
            while self._queue and self.up:
                await asyncio.wait_for(self._send(*self._queue[0]), SOCKET_TIMEOUT)
                self._queue.popleft()

    # publishing

    def add(self, op: Op, key: str) -> None:
        """Queue ``op`` (of the person with name key ``key``) for this iteration's batch."""
        self._open.append((op, key))
        self.held += 1
        if len(self._open) == 1:
            self._wake.set()

    @property
    def full(self) -> bool:
        return self.held >= MAX_HELD

    def _seal(self) -> None:
        """The open ops become the next batch (at most ``BATCH_OPS``: a long outage's
        held ops go out in several)."""
        if self._open:
            self._counter += 1
            self._queue.append((self._counter, self._open[:BATCH_OPS]))
            del self._open[:BATCH_OPS]

    async def _publish_loop(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # the rest of this iteration's ops join the batch
            while (self._open or self._queue) and not self._closing:
                await self._up.wait()
                if self._closing:
                    return
                if not self._queue:
                    self._seal()
                number, ops = self._queue[0]
                try:
                    await self._send(number, ops)
                except (RedisError, OSError) as exc:
                    await self._lost(exc)
                    continue
                self._queue.popleft()
                self.held -= len(ops)

    async def _send(self, number: int, ops: list[tuple[Op, str]]) -> None:
        args: list[Any] = [
            self.prefix,
            self.origin,
            number,
            self._limit,
            STREAM_LENGTH,
            encode_ops([op for op, _key in ops]),
            _fields.encode([op_args(op, key, self.origin) for op, key in ops]),
        ]
        await self._publish(args=args)

    # reading

    async def _read_loop(self) -> None:
        stream = self.prefix + "stream"
        while not self._closing:
            await self._up.wait()
            if self._closing:
                return
            try:
                reply = await self._reader.xread(
                    {stream: self.cursor or "0-0"}, count=READ_COUNT, block=READ_BLOCK_MS
                )
            except (RedisError, OSError) as exc:
                await self._lost(exc)
                continue
            if not reply:
                continue
            entries: list[Entry] = []
            stream_entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]  # type: ignore[index,assignment]
            for entry_id, fields in stream_entries:
                ident = entry_id.decode()
                try:
                    ops = list(entry_ops(fields[b"b"], fields[b"s"]))
                except (KeyError, ValueError, msgspec.DecodeError) as exc:  # never one to stop on
                    self._sink.broken(f"stream entry {ident} skipped: {exc}")
                    ops = []
                entries.append((ident, fields.get(b"o", b"?").decode(), ops))
            cursor = entries[-1][0]
            self.lag_seconds = max(0.0, time.time() - int(cursor.split("-")[0]) / 1000)
            self.cursor = cursor
            self._sink.entries(entries, cursor)

    # staying alive

    async def _heartbeat_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(HEARTBEAT)
            await self._up.wait()
            if self._closing:
                return
            try:
                reaped = await self._heartbeat(args=[self.prefix, self.origin, ALIVE_MS])
                if reaped:
                    self._sink.given_up()
                others = sorted(self._sink.servers() - {self.origin})
                if others:
                    alive = await self._redis.exists(*[self._alive(s) for s in others])
                    if alive < len(others):
                        for server in others:
                            args: list[Any] = [
                                *(self.prefix, server, self._limit, STREAM_LENGTH, time.time())
                            ]
                            freed = await self._reap(args=args)
                            if freed:
                                self._sink.dead(server, int(freed))
            except (RedisError, OSError) as exc:
                await self._lost(exc)

    def _alive(self, server: str) -> str:
        return f"{self.prefix}alive:{server}"

    async def _lost(self, exc: BaseException) -> None:
        """Redis went away: tell the sink once, then retry until it is back."""
        if self._closing:
            return
        if self.up:
            self.up = False
            self._up.clear()
            self._sink.lost(str(exc) or exc.__class__.__name__)
            self._spawn(self._reconnect)
        await self._up.wait()

    async def _reconnect(self) -> None:
        """Until Redis answers again. The wait grows from 50 ms to 1 s and starts small
        again only after a minute up: a Redis that answers but refuses (out of memory)
        is not hammered."""
        if time.monotonic() - self._up_since > 60:
            self._delay = 0.05
        while not self._closing:
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, 1.0)
            try:
                await self._sync(first=False)
            except (RedisError, OSError):
                continue
            self.reconnects += 1
            self._set_up()
            self._sink.back()
            return

    def _set_up(self) -> None:
        self._up_since = time.monotonic()
        self.up = True
        self._up.set()
        self._wake.set()

    async def _sync(self, first: bool) -> None:
        """(Re)connected: raise the seqs to ours, keep alive, and check the cursor."""
        seeds = self._sink.seeds()
        if seeds:
            pairs: list[Any] = [self.prefix]
            for room, seq in seeds.items():
                pairs += [room, seq]
            await self._seed(args=pairs)
        # Its answer counts here too: after a stop (SIGSTOP, a long pause) this beat may be
        # the first, and "given up for dead" is told once.
        reaped = await self._heartbeat(args=[self.prefix, self.origin, ALIVE_MS])
        raw = await self._snapshot(args=[self.prefix, secrets.token_hex(8), self._sink.identity()])
        epoch = raw[1].decode()
        why = None
        if self.epoch is not None and epoch != self.epoch:
            why = "the backplane (Redis) lost its data: some messages may be missing"
        elif self.cursor is not None and await self._trimmed_past(self.cursor):
            why = "this server fell too far behind the backplane: some messages are missing"
        if first or why is not None or self.cursor is None:
            snapshot = Snapshot(
                raw[0].decode(),
                _hash(raw[2]),
                _hash(raw[3]),
                {r.decode(): _hash(m) for r, m in zip(raw[4][::2], raw[4][1::2], strict=True)},
                {k: int(v) for k, v in _hash(raw[5]).items()},
                raw[6].decode(),
            )
            if why is not None or self.cursor is None or self.epoch is None:
                self.cursor = snapshot.last
            self.epoch = epoch
            self._sink.restart(snapshot, why)
        if reaped and why is None:  # (a restart with a reason says who is here itself)
            self._sink.given_up()

    async def _trimmed_past(self, cursor: str) -> bool:
        try:
            info = await self._redis.xinfo_stream(self.prefix + "stream")
        except ResponseError:  # no stream (yet)
            return False
        deleted = info.get("max-deleted-entry-id", b"0-0")
        deleted = deleted.decode() if isinstance(deleted, bytes) else str(deleted)
        return _id(deleted) > _id(cursor)


def _id(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


logging.getLogger("redis").setLevel(logging.WARNING)
