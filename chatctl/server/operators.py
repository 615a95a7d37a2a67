"""Who may moderate: the server's operators, and a record of what operators did.

Server operators are names (``serve --op``, one per line in ``--ops-file``, which
SIGHUP reads again) that are operators in every room. They only mean something
with claimed names, so the server refuses them without history: a name that is
claimed can only be used by the one who holds its secret. Room operators are the
rooms' own (``Room.operators``).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from chatctl.protocol import Moderation, ProtocolError, check_name, name_key

#: How many operators' actions ``status`` lists (the latest).
RECORD = 50


class OperatorsError(Exception):
    """The ops file cannot be used; the message is one line for a person."""


class Operators:
    """The server's operators by name key, and the latest moderation actions."""

    def __init__(self, names: tuple[str, ...], path: str | None) -> None:
        self._given = tuple(names)
        self.path = path
        self.names: tuple[str, ...] = ()
        self.record: deque[Moderation] = deque(maxlen=RECORD)
        self._keys: frozenset[str] = frozenset()

    def load(self) -> int:
        """Read ``--op`` and the ops file (again); how many operators there are now.

        Raises OperatorsError, and changes nothing, if the file cannot be read or
        holds something that is not a name.
        """
        names = list(self._given)
        if self.path is not None:
            names += read_ops_file(Path(self.path))
        self.names = tuple(dict.fromkeys(names))
        self._keys = frozenset(name_key(name) for name in self.names)
        return len(self.names)

    def __contains__(self, key: str) -> bool:
        """Whether the name key ``key`` is a server operator's."""
        return key in self._keys

    def __bool__(self) -> bool:
        return bool(self._keys)

    def done(self, action: Moderation) -> None:
        self.record.append(action)


def read_ops_file(path: Path) -> list[str]:
    """The names in ``path``: one per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OperatorsError(f"cannot read the ops file {path}: {reason}") from None
    names = []
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        try:
            names.append(check_name(name))
        except ProtocolError as exc:
            raise OperatorsError(f"{path}, line {number}: {exc.message}") from None
    return names
