"""The listening socket: ``ChatServer`` starts the hub, accepts sessions, stops cleanly.

``async with ChatServer(config) as server:`` in tests and other programs; the
CLI wraps the same object with the connection log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from chatctl.server import timers
from chatctl.server.config import ServerConfig
from chatctl.server.events import Listening, Observer, ignore
from chatctl.server.hub import Hub
from chatctl.server.session import Session


class ChatServer:
    """The listening socket plus its hub."""

    def __init__(
        self,
        config: ServerConfig,
        observer: Observer = ignore,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.hub = Hub(config, observer, tls=tls)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the history (HistoryError), read the operators (OperatorsError), then
        listen (OSError)."""
        self.hub.open_history()
        loop = asyncio.get_running_loop()
        try:
            self.hub.load_operators()
            self._server = await loop.create_server(
                lambda: Session(self.hub),
                self.config.host,
                self.config.port,
                backlog=self.config.backlog,
                reuse_address=True,
            )
        except BaseException:
            self.hub.close_history()
            raise
        self._tasks.append(asyncio.create_task(timers.sweep(self.hub)))
        if self.config.keep_seconds is not None or self.config.keep_messages is not None:
            self._tasks.append(asyncio.create_task(timers.retain(self.hub)))
        self.hub.observer(Listening(self.addresses))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            for sock in self._server.sockets
        ]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
        await self.hub.shut_down(self.config.shutdown_grace)
        if self._server is not None:
            # Every connection is gone by now, so this returns at once on 3.11 and 3.12+.
            await self._server.wait_closed()
            self._server = None
        self.hub.close_history()

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
