"""What the tests with real IRC clients in tmux (irssi, WeeChat) share."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support import ServeProcess, Terminal, tmux_terminal

#: What an IRC client shows for the door's error numerics (its own words or the door's),
#: and for ERROR lines. 422 "MOTD File is missing" is not one: every login says it.
ERROR_WORDS = (
    r"Unknown command|not registered|Not enough parameters|ERROR|Closing Link|No such"
    r"|Cannot (?:send|join)|not on that channel|already in use|Erroneous|channel operator"
    r"|not a mode|Invalid CAP|No text to send|No recipient|No nickname|reregister"
    r"|Too many|too long|not allowed|refused|error"
)


@contextmanager
def client_pane(client: str, hint: str) -> Iterator[Terminal]:
    """A private tmux server for ``client``; skipped where it or tmux is not installed."""
    missing = [tool for tool in (client, "tmux") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} ({hint})")
    with tmux_terminal() as term:
        yield term


def enter(term: Terminal, line: str) -> None:
    """Type one line and press Enter: never more than one line per send-keys."""
    term.type(line)
    term.keys("Enter")


def irc_port(server: ServeProcess) -> int:
    """The door's port, from the server's ``listening on ..., IRC on HOST:PORT`` line."""
    return int(server.log.wait_for(r", IRC on 127\.0\.0\.1:(\d+)").group(1))


def error_texts(extra: str = "") -> re.Pattern[str]:
    return re.compile(ERROR_WORDS + extra, re.IGNORECASE)
