"""A piped ``chatctl join`` at end of input leaves only once the server relayed everything.

Real ``chatctl join`` processes; a real ``chatctl serve``, and a fake server that
reads slowly, as a server pacing a fast sender does.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatctl.protocol import (
    Bye,
    Hello,
    Joined,
    Message,
    RoomState,
    Say,
    Welcome,
    client_frame_decoder,
    encode,
)
from tests.support import (
    FACTOR,
    PipedClient,
    ServeProcess,
    chatctl_command,
    env,
    run_chatctl,
    serve_process,
)

STAMP = r"\[\d\d:\d\d:\d\d\]"


@pytest.fixture
def paced() -> Iterator[ServeProcess]:
    """A server that paces floods: 20 at once, then 100 per second (300 lines: ~3 s)."""
    with serve_process("--burst", "20", "--rate", "100") as server:
        yield server


def test_three_hundred_lines_all_arrive_in_order(paced: ServeProcess) -> None:
    watcher = PipedClient("watcher", paced.port).joined()
    try:
        lines = [str(i) for i in range(1, 301)]
        result = run_chatctl(
            "join", "bot", "--port", str(paced.port), input="\n".join(lines) + "\n"
        )
        assert result.returncode == 0, result.stderr
        assert "not sent" not in result.stderr, result.stderr
        own = [line for line in result.stdout.splitlines() if re.match(rf"{STAMP} bot: ", line)]
        assert [line.split(": ", 1)[1] for line in own] == lines  # each came back to bot

        watcher.out.wait_for(rf"^{STAMP} \* bot left$")
        said = [line.split(": ", 1)[1] for line in watcher.out.snapshot() if " bot: " in line]
        assert said == lines
        paced.log.wait_for(r"- bot left \(quit\)")
    finally:
        watcher.kill()


async def test_end_of_input_waits_for_a_server_that_reads_slowly() -> None:
    """The server takes a line every 0.07 s: 2.5 s for 35, longer than the old fixed wait."""
    count, pace = 35, 0.07
    said: list[str] = []
    byes = 0

    async def pacing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal byes
        decoder = client_frame_decoder()
        seq = 0
        while data := await reader.read(256):  # small reads: the rest waits in the socket
            decoder.feed(data)
            while (frame := decoder.next_frame()) is not None:
                if isinstance(frame, Hello):
                    writer.write(encode(Welcome(version=2, name="bot", server="slow")))
                    writer.write(encode(RoomState(room="#lobby", seq=0, users=["bot"], online=1)))
                    seq += 1
                    joined = Joined(seq=seq, time=time.time(), name="bot", room="#lobby")
                    writer.write(encode(joined))
                elif isinstance(frame, Say):
                    await asyncio.sleep(pace)
                    said.append(frame.text)
                    seq += 1
                    echo = Message(seq, time.time(), "bot", frame.text, frame.room, frame.id)
                    writer.write(encode(echo))
                elif isinstance(frame, Bye):
                    byes += 1
                    writer.close()
                    return
        writer.close()

    server = await asyncio.start_server(pacing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lines = [f"line {i}" for i in range(count)]
    try:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *chatctl_command(), "join", "bot", "--port", str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(
            proc.communicate(("\n".join(lines) + "\n").encode()), 30 * FACTOR
        )
        elapsed = time.monotonic() - started
    finally:
        server.close()
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert said == lines
    assert byes == 1  # it said goodbye after the last line, not before
    assert "not sent" not in stderr, stderr
    assert elapsed >= count * pace
    echoed = [line.split(": ", 1)[1] for line in out.decode().splitlines() if " bot: " in line]
    assert echoed == lines


def test_lines_a_dead_server_never_relayed_are_listed_on_stderr() -> None:
    """A server that takes two lines in, relays neither, and goes away."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    taken: list[str] = []

    def swallow() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rwb") as stream:
            stream.readline()  # hello
            stream.write(encode(Welcome(version=2, name="bot", server="x")))
            stream.write(encode(RoomState(room="#lobby", seq=0, users=["bot"], online=1)))
            stream.flush()
            for line in stream:
                taken.append(line.decode())
                if len(taken) == 2:
                    return  # closes the connection without a word

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    bot = PipedClient("bot", port)
    try:
        bot.err.wait_for(r"joined x as bot")
        bot.send("swallowed \x1b[2J")
        bot.send("swallowed too")
        assert bot.wait() == 6, bot.everything()
        assert len(taken) == 2, taken
        errors = [re.sub(rf"^{STAMP} ", "", line) for line in bot.err.snapshot()]
        assert errors[-3:] == [
            f"* connection to 127.0.0.1:{port} lost",
            r"* not sent: swallowed \x1b[2J",
            "* not sent: swallowed too",
        ], bot.err.text()
        assert "not sent" not in bot.out.text()  # stdout carries only the conversation
    finally:
        bot.kill()
        listener.close()
        thread.join(5 * FACTOR)


def test_a_huge_pipe_is_read_only_as_fast_as_the_server_takes_it() -> None:
    """``yes | chatctl join bot``: the client reads ahead a bounded amount, not the whole input.

    With pacing at 5 lines/s the server takes ~25 KiB in the test's time; the rest must stay
    in the pipe (its writer blocks) instead of in the client's memory.
    """
    total = 64 * 1024 * 1024
    line = b"y" * 1023 + b"\n"
    written = 0
    with serve_process() as server:  # default pacing: 20 at once, then 5 per second
        proc = subprocess.Popen(
            [*chatctl_command(), "join", "bot", "--port", str(server.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(),
        )
        assert proc.stdin is not None
        stdin = proc.stdin

        def feed() -> None:
            nonlocal written
            with contextlib.suppress(OSError):  # BrokenPipe once the client is killed
                while written < total:
                    stdin.write(line * 64)
                    written += len(line) * 64

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            server.log.wait_for(r"\+ bot joined")
            # Wait until the writer is stuck: no progress for a second (or it wrote it all).
            deadline = time.monotonic() + 20 * FACTOR
            last, still_since = -1, time.monotonic()
            while time.monotonic() < deadline and writer.is_alive():
                if written != last:
                    last, still_since = written, time.monotonic()
                elif time.monotonic() - still_since > 1.0:
                    break
                time.sleep(0.05)
            rss_kib = int(
                re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{proc.pid}/status").read_text())[1]  # type: ignore[index]
            )
            assert written < total // 2, f"the client read {written} bytes ahead"
            assert rss_kib < 100 * 1024, f"client RSS {rss_kib} KiB"
        finally:
            proc.kill()
            proc.wait(5)
            writer.join(5)
            with contextlib.suppress(OSError):
                stdin.close()
