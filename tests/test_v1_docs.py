"""A client written against the version-1 docs still chats: replay their nc session.

docs/protocol-v1.md is frozen. Its transcript is read line by line: ``>`` lines are
sent on a raw socket as they are, ``<`` lines are the frames that must come back
(times, addresses and versions aside), and the ``#`` lines are what another
terminal did, done here by a real ``chatctl join`` (which speaks version 2: the
version-1 reader must not be able to tell).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import FACTOR, ROOT, PipedClient, ServeProcess

DOC = (ROOT / "docs" / "protocol-v1.md").read_text()
#: Values that differ from run to run: compared by type only.
VARYING = {"time", "started_at", "uptime_seconds", "connected_at", "idle_seconds", "address"}
#: Values that name this build, not the protocol.
BUILD = {"server", "version", "protocol"}


def transcripts(heading: str, count: int = 1) -> list[list[str]]:
    """The lines of the first ``count`` ```text blocks after ``heading``."""
    after = DOC[DOC.index(heading) :]
    blocks = re.findall(r"```text\n(.*?)```", after, flags=re.S)[:count]
    assert len(blocks) == count, heading
    return [block.splitlines() for block in blocks]


def same(expected: Any, actual: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (path, actual)
        if expected.get("type") not in ("status_reply", None):
            assert set(actual) == set(expected), (path, actual)  # nothing added, nothing lost
        for key, value in expected.items():
            assert key in actual, (path, key, actual)
            if key in VARYING:
                assert type(actual[key]) is type(value), (path, key)
            elif key not in BUILD or not isinstance(value, str | int):
                same(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), (path, actual)
        for a, b in zip(expected, actual, strict=True):
            same(a, b, path)
    else:
        assert actual == expected, (path, expected, actual)


class Wire:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * FACTOR)
        self.file = self.sock.makefile("rb")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def read(self) -> dict[str, Any] | None:
        line = self.file.readline()
        return json.loads(line) if line else None

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def server() -> Iterator[ServeProcess]:
    serve = ServeProcess()
    yield serve
    serve.stop()


def test_the_version_1_session_of_the_frozen_docs_runs_unchanged(server: ServeProcess) -> None:
    alice = Wire(server.port)
    bob: PipedClient | None = None
    steps = 0
    try:
        [session] = transcripts("Alice's terminal:")
        for line in session:
            if line.startswith("> "):
                alice.send(line[2:])
            elif line.startswith("< "):
                frame = alice.read()
                same(json.loads(line[2:]), frame, line[2:40])
                steps += 1
            elif line.startswith("# bob joins"):
                bob = PipedClient("bob", server.port).joined()
            elif line.startswith("# bob, in his terminal, sends: "):
                assert bob is not None
                bob.send(line.split("sends: ", 1)[1])
            elif line.startswith("# bob leaves"):
                assert bob is not None
                bob.close_stdin()
                assert bob.wait(10) == 0, bob.everything()
            elif line == "(connection closed by the server)":
                assert alice.read() is None
        assert steps == 12  # every frame of the transcript was checked

        # Then, on the same server: "Two terminals, one name".
        carol, other = Wire(server.port), Wire(server.port)
        blocks = transcripts("Two terminals, one name:", 2)
        for conn, block in zip((carol, other), blocks, strict=True):
            for line in block:
                if line.startswith("> "):
                    conn.send(line[2:])
                elif line.startswith("< "):
                    same(json.loads(line[2:]), conn.read(), line[2:40])
        carol.close()
        other.close()
    finally:
        alice.close()
        if bob is not None:
            bob.kill()
