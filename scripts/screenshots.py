"""Render the README screenshots, docs/img/server.svg and docs/img/client.svg.

    python scripts/screenshots.py

No server, no terminal: protocol frames and server events go through the project's
own renderers (``chatctl.ui.render`` for the client, ``chatctl.ui.serverlog`` for
the server log) into a recording Rich console, which saves an SVG. Clock times are
fixed and shown in UTC, so the pictures only change when the rendering does.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from rich.console import Console
from rich.text import Text

from chatctl import __version__
from chatctl.protocol import Joined, Left, Message, Private, RoomState, ServerFrame
from chatctl.server.config import ServerConfig
from chatctl.server.events import Listening, Refused, ServerEvent, UserJoined, UserLeft
from chatctl.server.hub import Hub
from chatctl.ui import serverlog
from chatctl.ui.frames import render_frame
from chatctl.ui.render import welcome_line

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
WIDTH = 100

#: 2024-05-14 09:30:00 UTC: the morning the screenshots were taken.
T0 = datetime(2024, 5, 14, 9, 30, tzinfo=UTC).timestamp()


def recording_console() -> Console:
    return Console(
        record=True,
        width=WIDTH,
        force_terminal=True,
        color_system="truecolor",
        highlight=False,
        soft_wrap=False,  # wrap at WIDTH, as the terminal would; an SVG would crop
        file=io.StringIO(),  # record only; nothing reaches the real terminal
        legacy_windows=False,
    )


@contextmanager
def clock_at(timestamp: float) -> Iterator[None]:
    """Make ``time.time()`` (used for stamps by the renderers) return ``timestamp``."""
    with mock.patch("time.time", return_value=timestamp):
        yield


def use_utc() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()


# --------------------------------------------------------------------------- server


def server_log() -> Console:
    console = recording_console()
    log = serverlog.ServerLog(io.StringIO(), terminal=True)
    log.console = console  # the real log's line format, into the recording console

    events: list[tuple[float, ServerEvent]] = [
        (0, Listening([("0.0.0.0", 5000)])),
        (41, UserJoined("bob", "127.0.0.1:51724")),
        (63, UserJoined("alice", "192.168.1.23:40312")),
        (118, UserJoined("carol", "192.168.1.31:52990")),
        (131, Refused("192.168.1.44:49152", "name_taken")),
        (240, UserLeft("bob", "127.0.0.1:51724", "quit")),
        (287, UserJoined("dave", "192.168.1.52:60104")),
        (342, UserLeft("dave", "192.168.1.52:60104", "dropped")),
    ]
    for offset, event in events:  # no MessageRelayed: message text is logged only with -v
        with clock_at(T0 + offset):
            log(event)

    hub = Hub(ServerConfig())
    hub.members = {"alice": None, "carol": None}  # type: ignore[dict-item]  # only counted
    hub.messages_relayed = 9
    console.print(serverlog._footer(hub))
    return console


# --------------------------------------------------------------------------- client

ME = "alice"
ROOM = "#ops"

PASTE = """\
Traceback (most recent call last):
  File "app/worker.py", line 42, in run
    job = queue.pop()
IndexError: pop from empty list"""


def conversation() -> list[tuple[float, ServerFrame]]:
    seq = iter(range(3, 100))  # 1: bob joined, 2: alice joined

    def say(offset: float, name: str, text: str) -> tuple[float, Message]:
        return offset, Message(next(seq), T0 + offset, name, text, ROOM)

    return [
        (63, Joined(seq=2, time=T0 + 63, name=ME, room=ROOM)),  # not shown: the welcome said so
        say(95, "bob", "morning! 2.3 goes out at 10"),
        say(104, "alice", "morning. anything we should watch?"),
        say(111, "bob", "the queue workers, they got the new retry logic"),
        (118, Joined(seq=next(seq), time=T0 + 118, name="carol", room=ROOM)),
        say(164, "carol", "hi all, staging fails for me:"),
        say(166, "carol", PASTE),
        say(190, "alice", "that's the empty-queue race, fixed in #812: rebase on main"),
        say(228, "carol", "rebased, green now. thanks!"),
        say(233, "bob", "then 2.3 it is. off to the deploy call"),
        (236, Private(time=T0 + 236, name="bob", to=ME, text="can you watch the queue for me?")),
        (240, Left(seq=next(seq), time=T0 + 240, name="bob", reason="quit", room=ROOM)),
        say(251, "carol", "[bold]markup[/] and \\x1b[2J arrive inert, by the way"),
    ]


def client_view() -> Console:
    console = recording_console()
    state = RoomState(room=ROOM, seq=1, users=["bob", ME], online=2)
    with clock_at(T0 + 63):
        console.print(welcome_line(ME, f"chatctl {__version__}", [state]))
    for _offset, frame in conversation():
        line = render_frame(frame, ME)
        if line is not None:
            console.print(line)
    # The prompt_toolkit input line, as chatctl.ui.chat draws it, with a reply half typed.
    prompt = Text.assemble((f"[{ROOM}] ", "bold cyan"), (ME, "bold"), "> ")
    console.print(prompt.append("nice, merging #812 now"))
    return console


# --------------------------------------------------------------------------- main


def main() -> int:
    use_utc()
    OUT.mkdir(parents=True, exist_ok=True)
    shots = [
        (server_log(), "chatctl serve", OUT / "server.svg"),
        (client_view(), f"chatctl join {ME}", OUT / "client.svg"),
    ]
    for console, title, path in shots:
        console.save_svg(str(path), title=title)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
