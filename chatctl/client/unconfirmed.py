"""What one connection sent that the server has not relayed back yet, by message id.

Every message and private message the client sends carries an id of its own; the
server echoes it on the relayed copy (the sender gets every one of its messages
back, in its place in the room's order) or on the error that refused it
(docs/protocol.md, "Message ids"). What is left when the connection ends was, as
far as the client can tell, never relayed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator


class Unconfirmed:
    """Messages sent but not yet seen coming back, oldest first."""

    def __init__(self) -> None:
        #: Unique for the connection, and unlike another client's ids.
        self._prefix = secrets.token_hex(4)
        self._count = 0
        self._lines: dict[str, str] = {}

    def new_id(self) -> str:
        """An id for a request that is not a message (join, nick, ...)."""
        self._count += 1
        return f"{self._prefix}.{self._count}"

    def sent(self, text: str) -> str:
        """Remember a message about to be sent; its id."""
        id = self.new_id()
        self._lines[id] = text
        return id

    def echoed(self, id: str | None) -> bool:
        """The server relayed message ``id``: it is confirmed. False if it was not ours."""
        return id is not None and self._lines.pop(id, None) is not None

    def refused(self, id: str | None) -> str | None:
        """The server refused message ``id``: forget it and return its text."""
        return self._lines.pop(id, None) if id is not None else None

    def take(self) -> list[str]:
        """Every pending line, as sent, oldest first; the list is then empty."""
        return list(self.take_by_id().values())

    def take_by_id(self) -> dict[str, str]:
        """Every pending line by its id, oldest first; the list is then empty."""
        lines, self._lines = self._lines, {}
        return lines

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._lines.values()))
