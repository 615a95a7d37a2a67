"""Piped input: lines read from stdin in a thread, a bounded number ahead of the sender."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator

from chatctl.protocol import MAX_TEXT_BYTES

#: Longer stdin lines are refused anyway, so the reader never holds more than this.
_MAX_LINE = MAX_TEXT_BYTES * 4
#: Lines read from stdin but not yet sent. The sender goes at the server's pace (5/s once
#: the burst is spent), so ``cat big.log | chatctl join`` would otherwise hold the whole
#: file in memory; with this bound the reader waits, and so does the pipe's writer.
MAX_READ_AHEAD = 256


def split_lines(chunks: Iterable[bytes], limit: int = _MAX_LINE) -> Iterator[bytes]:
    """Lines from a stream of chunks, newline dropped; a line over ``limit`` is cut there.

    The cut line is still yielded (it is over the message limit, so sending it
    fails with a clear "not sent"), and the rest of it is skipped.
    """
    buf = b""
    skipping = False
    for chunk in chunks:
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if not skipping:
                yield buf[start:end]
            skipping = False
            start = end + 1
        buf = buf[start:]
        if len(buf) > limit:
            if not skipping:
                yield buf[:limit]
            skipping, buf = True, b""
    if buf and not skipping:
        yield buf


def _read_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, 65536):
        yield chunk


def start_stdin_reader(
    loop: asyncio.AbstractEventLoop,
    lines: asyncio.Queue[str | None],
    room: threading.BoundedSemaphore,
) -> None:
    """Read stdin in a daemon thread and hand lines to the loop.

    A daemon thread because ``connect_read_pipe`` fails on regular files and
    hangs on /dev/null, and a worker thread blocked in read() would keep the
    process alive at exit while stdin stays open. It reads the file descriptor
    with ``os.read``, not ``sys.stdin``: a daemon thread blocked inside a
    buffered reader holds its lock, and the interpreter aborts at exit on it.
    It takes one of ``room``'s slots per line, so it never reads far ahead.
    """

    def put(item: str | None) -> None:
        room.acquire()  # released as the loop takes each line: at most MAX_READ_AHEAD held
        with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting anyway
            loop.call_soon_threadsafe(lines.put_nowait, item)

    def pump() -> None:
        try:
            if sys.stdin is not None:
                for raw in split_lines(_read_chunks(sys.stdin.fileno())):
                    put(raw.decode("utf-8", errors="replace").rstrip("\r"))
        except (OSError, ValueError):
            pass
        finally:
            put(None)

    threading.Thread(target=pump, name="chatctl-stdin", daemon=True).start()
