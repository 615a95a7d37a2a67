"""Fixtures: an in-process server for the cores, a real ``chatctl serve`` for the CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatctl.server.config import ServerConfig
from chatctl.server.events import ServerEvent
from chatctl.server.listener import ChatServer
from tests.support import ServeProcess, serve_process


class RecordingServer(ChatServer):
    """A ChatServer on 127.0.0.1, ephemeral port, that keeps every event it emits."""

    def __init__(self, **config: object) -> None:
        self.events: list[ServerEvent] = []
        super().__init__(
            ServerConfig(host="127.0.0.1", port=0, **config),  # type: ignore[arg-type]
            self.events.append,
        )


def pytest_configure(config: pytest.Config) -> None:
    # `python -X dev -m pytest` (README, .ci/run) with pytest-xdist: the workers are new
    # interpreters, so they are told to run in development mode too (warnings as errors
    # need the ResourceWarnings that only development mode emits). support.env() keeps it
    # from the chatctl processes the tests start.
    if sys.flags.dev_mode:
        os.environ["PYTHONDEVMODE"] = "1"
    # The suite starts some 500 chatctl processes and four workers that each import every
    # test module: with PYTHONDONTWRITEBYTECODE set (some sandboxes set it), each of them
    # compiles from source, ~60 ms a process and ~5 s a worker. The caches go in
    # __pycache__ folders, which git ignores.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    config.addinivalue_line(
        "markers", "server_config(**fields): ServerConfig fields for the `server` fixture"
    )


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[RecordingServer]:
    """An in-process server; ``@pytest.mark.server_config(rate=0, ...)`` sets its limits."""
    marker = request.node.get_closest_marker("server_config")
    async with RecordingServer(**(marker.kwargs if marker else {})) as srv:
        yield srv


@pytest.fixture
def serve() -> Iterator[ServeProcess]:
    with serve_process() as proc:
        yield proc


@pytest.fixture(autouse=True)
def _scratch_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code run in the test process never touches the user's config folder either."""
    monkeypatch.setenv("CHATCTL_CONFIG_DIR", str(tmp_path / "config"))
