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
from chatctl.server.irc import IrcSession
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
        self._irc: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the history (HistoryError), read the operators (OperatorsError), then
        listen (OSError), join the backplane (BackplaneError), and only then serve."""
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
                reuse_port=self.config.reuse_port or None,
                start_serving=False,
            )
            if self.config.irc_port is not None:
                self._irc = await self._listen_irc(loop)
            if self.config.backplane is not None:
                await self.hub.join_cluster(self.config.backplane, self.port)
            for server in (self._server, self._irc):
                if server is not None:
                    await server.start_serving()
        except BaseException:
            for server in (self._server, self._irc):
                if server is not None:
                    server.close()
            self._server = self._irc = None
            await self.hub.leave_cluster()
            self.hub.close_history()
            raise
        self._tasks.append(asyncio.create_task(timers.sweep(self.hub)))
        if self.config.keep_seconds is not None or self.config.keep_messages is not None:
            self._tasks.append(asyncio.create_task(timers.retain(self.hub)))
        self.hub.observer(Listening(self.addresses, self.irc_addresses))

    async def _listen_irc(self, loop: asyncio.AbstractEventLoop) -> asyncio.Server:
        """The IRC door; an OSError names its address (the chatctl port is fine)."""
        host = self.config.irc_host or self.config.host
        try:
            return await loop.create_server(
                lambda: IrcSession(self.hub),
                host,
                self.config.irc_port,
                backlog=self.config.backlog,
                reuse_address=True,
                reuse_port=self.config.reuse_port or None,
                start_serving=False,
            )
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"{host}:{self.config.irc_port}") from exc

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return _addresses(self._server)

    @property
    def irc_addresses(self) -> list[tuple[str, int]]:
        return _addresses(self._irc)

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for server in (self._server, self._irc):
            if server is not None:
                server.close()
        try:
            await self.hub.shut_down(self.config.shutdown_grace)
            if self._server is not None:
                # Every connection is gone by now, so this returns at once on 3.11 and 3.12+.
                await self._server.wait_closed()
                self._server = None
            if self._irc is not None:
                await self._irc.wait_closed()
                self._irc = None
        finally:  # whatever went wrong above: a backplane left open never lets the loop end
            await self.hub.leave_cluster()  # after the leaves, which it sends on
            self.hub.close_history()

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _addresses(server: asyncio.Server | None) -> list[tuple[str, int]]:
    if server is None:
        return []
    return [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in server.sockets]
