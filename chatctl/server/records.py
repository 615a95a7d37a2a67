"""What a server keeps in its history file: the file, the history, claims, bans, search.

All of them or none: they share one SQLite file (``store``), opened at start by
``open`` and closed last by ``close``. Without a file there are no claims and no
search, and bans live in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from chatctl.server.bans import Bans
from chatctl.server.claims import Claims
from chatctl.server.history import History
from chatctl.server.search import SearchIndex
from chatctl.server.store import Store


class Records:
    def __init__(self) -> None:
        #: The history file, once ``open`` opened it (None: nothing is kept).
        self.history: History | None = None
        #: Claimed names: kept in the history file, so only with history.
        self.claims: Claims | None = None
        #: The search index of the history file, kept by a thread of its own.
        self.search: SearchIndex | None = None
        self.bans = Bans()
        self._store: Store | None = None

    def open(
        self,
        path: str,
        failed: Callable[[str], None],
        search_failed: Callable[[str], None],
    ) -> History:
        """Open ``path`` (HistoryError if it cannot be used). ``failed``: told when
        writing it fails later; ``search_failed``: when the search index does (called
        on the loop, from the index's thread)."""
        store = self._store = Store.open(Path(path), failed)
        self.history = History(store)
        self.claims = Claims(store)
        self.bans = Bans(store.conn)
        loop = asyncio.get_running_loop()
        self.search = SearchIndex(
            Path(path), store.server_id, lambda message: _call_soon(loop, search_failed, message)
        )
        self.search.start()
        return self.history

    def close(self) -> None:
        if self.search is not None:
            self.search.stop()
            self.search = None
        if self.history is not None:
            self.history.close()
            self.history = None
            self.claims = None
        if self._store is not None:
            self._store.close()
            self._store = None


def _call_soon(loop: asyncio.AbstractEventLoop, call: Callable[[str], None], message: str) -> None:
    """From another thread: ``call`` on the loop (unless the loop is gone)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(call, message)
