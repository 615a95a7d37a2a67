"""The client side of history: the core over a real in-process server and a real SQLite
file, and how replayed messages look (pure rendering and the terminal's date lines).

Terminal and pipe behaviour with real ``chatctl`` processes is in tests/test_history_ui.py.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from chatctl.client import ChatClient, ClaimBook, past
from chatctl.protocol import (
    MAX_HISTORY,
    HistoryReply,
    Joined,
    Message,
    RoomState,
    ServerFrame,
    clean_frame,
)
from chatctl.ui.frames import View, render_frame
from chatctl.ui.output import Show
from chatctl.ui.render import (
    date_line,
    message_line,
)
from tests.conftest import RecordingServer
from tests.support import within

HOST = "127.0.0.1"
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RecordingServer]:
    """An in-process server keeping its history in a real SQLite file."""
    async with RecordingServer(history=str(tmp_path / "h.sqlite3")) as srv:
        yield srv


async def next_frame(frames: AsyncIterator[ServerFrame]) -> ServerFrame:
    frame: ServerFrame = await within(anext(frames))  # type: ignore[assignment]
    return frame


async def next_message(frames: AsyncIterator[ServerFrame]) -> Message:
    """The next message, past join notices."""
    while True:
        frame = await next_frame(frames)
        if isinstance(frame, Message):
            return frame
        assert isinstance(frame, Joined | RoomState), frame


async def say_all(client: ChatClient, texts: list[str], room: str | None = None) -> list[Message]:
    """Send ``texts`` and return them as the server relayed them (every one confirmed)."""
    frames = aiter(client)
    for text in texts:
        await client.say(text, room)
    relayed = [await next_message(frames) for _ in texts]
    assert not client.unconfirmed
    return relayed


async def test_join_with_history_gets_the_last_n_oldest_first(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice"))
    bob: ChatClient | None = None
    try:
        sent = await say_all(alice, [f"m{i}" for i in range(8)])
        bob = await within(ChatClient.join(HOST, server.port, "bob", history=5))
        [state] = bob.joined
        assert state.history == 5
        assert state.seq >= sent[-1].seq
        frames = aiter(bob)
        replayed = [await next_frame(frames) for _ in range(5)]
        assert all(isinstance(f, Message) and f.history for f in replayed), replayed
        assert (
            [(m.seq, m.text, m.name, m.id) for m in replayed]
            == [  # type: ignore[union-attr]
                (m.seq, m.text, m.name, m.id) for m in sent[-5:]
            ]
        )
        # Then live events: bob's own join, and a new message, not marked as history.
        await alice.say("live")
        live = await next_message(frames)
        assert (live.text, live.history) == ("live", False)
        assert bob.rooms.rooms["#lobby"].seq == live.seq  # a message's seq counts as seen
    finally:
        for client in (alice, bob):
            if client is not None:
                await client.close()


async def test_paging_back_keeps_what_is_said_meanwhile(tmp_path: Path) -> None:
    """A message said while the older pages are asked for is in none of them: ``past``
    keeps it from the live frames (``tail --since`` and ``export`` lost it)."""
    async with RecordingServer(history=str(tmp_path / "h.sqlite3"), rate=0) as srv:
        alice = await within(ChatClient.join(HOST, srv.port, "alice"))
        bob = await within(ChatClient.join(HOST, srv.port, "bob"))
        try:
            old = [f"old {i}" for i in range(MAX_HISTORY + 20)]  # two pages
            await say_all(alice, old)
            frames = aiter(bob)
            pages = 0

            async def watching() -> AsyncIterator[ServerFrame]:
                nonlocal pages
                async for frame in frames:
                    if isinstance(frame, HistoryReply):
                        pages += 1
                        if pages == 1:  # relayed to bob before he asks for the second page
                            await say_all(alice, ["said meanwhile"])
                    yield frame

            got = await within(past(bob, watching(), "#lobby", 2 * MAX_HISTORY))
            assert pages == 2
            assert [m.text for m in got.messages] == [*old, "said meanwhile"]
            assert len({m.seq for m in got.messages}) == len(got.messages)  # none twice
        finally:
            await alice.close()
            await bob.close()


async def test_no_history_asked_none_replayed(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice"))
    bob: ChatClient | None = None
    try:
        await say_all(alice, ["before"])
        bob = await within(ChatClient.join(HOST, server.port, "bob"))
        assert bob.joined[0].history == 0
        await alice.say("after")
        assert (await next_message(aiter(bob))).text == "after"
    finally:
        for client in (alice, bob):
            if client is not None:
                await client.close()


async def test_join_room_asks_for_that_rooms_history(server: RecordingServer) -> None:
    alice = await within(ChatClient.join(HOST, server.port, "alice", rooms=["#ops"]))
    bob = await within(ChatClient.join(HOST, server.port, "bob"))
    try:
        sent = await say_all(alice, ["one", "two", "three"], "#ops")
        frames = aiter(bob)
        await bob.join_room("#ops", history=2)
        while not isinstance(state := await next_frame(frames), RoomState):
            pass
        assert (state.room, state.history) == ("#ops", 2)
        replayed = [await next_frame(frames) for _ in range(2)]
        assert replayed == [
            Message(m.seq, m.time, m.name, m.text, m.room, m.id, history=True) for m in sent[1:]
        ]
    finally:
        await alice.close()
        await bob.close()


async def test_replayed_own_messages_confirm_nothing(
    server: RecordingServer, tmp_path: Path
) -> None:
    book = ClaimBook(tmp_path / "claims.json")  # alice's name is claimed on her first join
    first = await within(ChatClient.join(HOST, server.port, "alice", claims=book))
    try:
        old = await say_all(first, ["said before"])
        prefix = first.unconfirmed.new_id().rsplit(".", 1)[0]
    finally:
        await first.leave()
        await within(first.wait_ended(5))
        await first.close()
    again = await within(ChatClient.join(HOST, server.port, "alice", history=10, claims=book))
    try:
        # Ids are random per connection, so no replayed id could match a new one anyway;
        # this connection is made to reuse the old ones, so only the rule itself can hold.
        again.unconfirmed._prefix = prefix
        again.unconfirmed._count = 0
        id = await again.say("said now")
        assert id == old[0].id
        frames = aiter(again)
        replayed = await next_frame(frames)
        assert isinstance(replayed, Message)
        assert (replayed.text, replayed.history, replayed.id) == ("said before", True, id)
        assert list(again.unconfirmed) == ["said now"]  # still waiting for its own echo
        live = await next_message(frames)
        assert (live.text, live.history) == ("said now", False)
        assert not again.unconfirmed
    finally:
        await again.close()


async def test_a_history_count_out_of_range_is_refused_before_sending(
    server: RecordingServer,
) -> None:
    with pytest.raises(ValueError, match="history"):
        await within(ChatClient.join(HOST, server.port, "alice", history=MAX_HISTORY + 1))
    alice = await within(ChatClient.join(HOST, server.port, "alice", history=MAX_HISTORY))
    try:
        with pytest.raises(ValueError, match="history"):
            await alice.join_room("#ops", history=-1)
        assert alice.rooms.current == "#lobby"  # nothing was sent, nothing switched
    finally:
        await alice.close()


# --------------------------------------------------------------------------- rendering

DAY = 24 * 3600


def terminal(width: int = 100) -> tuple[Show, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system="256")
    return Show(console), buf


def rows_of(output: str) -> list[str]:
    """What a person reads of a terminal's output, row by row."""
    return [Text.from_ansi(row).plain for row in output.splitlines()]


def expected_date_line(timestamp: float) -> str:
    day = datetime.fromtimestamp(timestamp)
    return f"— {day:%A} {day.day} {day:%B %Y} —"


def test_a_replayed_message_is_dim_throughout_with_its_name_in_colour() -> None:
    frame = Message(seq=1, time=time.time(), name="bob", text="old\nnews", history=True)
    line = render_frame(frame, "alice")
    live = render_frame(Message(seq=2, time=time.time(), name="bob", text="new"), "alice")
    assert line is not None
    assert live is not None
    assert line.plain.split(" ", 1)[1] == "bob: old\n" + " " * len("[00:00:00] bob: ") + "news"
    show, buf = terminal()
    show(line)
    show(live)
    old_row, news_row, live_row = buf.getvalue().splitlines()
    assert old_row.startswith("\x1b[2m")
    assert "\x1b[2;36mbob" in old_row  # dim, in bob's colour (cyan), not bold
    assert "\x1b[2mnews" in news_row
    assert "\x1b[2m" not in live_row.split("] ", 1)[1]  # a live message: only its stamp
    assert "\x1b[1;36mbob" in live_row


def test_a_replayed_mention_is_not_highlighted() -> None:
    frame = Message(seq=1, time=time.time(), name="bob", text="alice: ping", history=True)
    line = render_frame(frame, "alice")
    assert line is not None
    assert not any("reverse" in str(span.style) for span in line.spans)


def test_a_hostile_replayed_message_is_inert() -> None:
    """The replay comes from the server like any frame: cleaned, then shown as text."""
    hostile = "clear\x1b[2J title\x1b]0;pwned\x07 [bold red]markup[/] csi\x9b31m"
    frame = clean_frame(
        Message(seq=1, time=time.time() - 3 * DAY, name="e\x1bve", text=hostile, history=True)
    )
    line = render_frame(frame, "alice")
    assert line is not None
    show, buf = terminal()
    show(line)
    rest = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    assert not any(bad in rest for bad in ("\x1b", "\x07", "\x9b")), repr(rest)
    assert r"clear\x1b[2J" in rest
    assert "[bold red]markup[/]" in rest


def test_pipes_stamp_replayed_messages_with_their_date() -> None:
    ts = time.time() - 3 * DAY
    frame = Message(seq=1, time=ts, name="bob", text="one\ntwo", history=True)
    line = render_frame(frame, View("alice", dated_history=True))
    assert line is not None
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    head = f"[{stamp}] bob: "
    assert line.plain == f"{head}one\n{' ' * len(head)}two"
    live = render_frame(
        Message(seq=2, time=ts, name="bob", text="x"), View("a", dated_history=True)
    )
    assert live is not None
    assert live.plain == f"[{time.strftime('%H:%M:%S', time.localtime(ts))}] bob: x"


def test_date_lines_come_between_days_and_before_an_old_first_line() -> None:
    now = time.time()
    show, buf = terminal()
    show(message_line(now - 3 * DAY, "bob", "three days ago", history=True))
    show(message_line(now - 3 * DAY + 1, "bob", "same day", history=True))
    show(message_line(now - DAY, "bob", "yesterday", history=True))
    show(message_line(now, "bob", "today"))
    rows = rows_of(buf.getvalue())
    assert [row for row in rows if row.startswith("—")] == [
        expected_date_line(now - 3 * DAY),
        expected_date_line(now - DAY),
        expected_date_line(now),
    ]
    assert rows[0] == expected_date_line(now - 3 * DAY)
    assert rows[3] == expected_date_line(now - DAY)
    assert rows[5] == expected_date_line(now)
    assert "\x1b[2m— " in buf.getvalue()  # plain dim


def test_no_date_line_for_todays_lines_nor_in_a_pipe() -> None:
    now = time.time()
    today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0).timestamp()
    show, buf = terminal()
    show(message_line(max(today, now - 60), "bob", "earlier today", history=True))
    show(message_line(now, "bob", "now"))
    assert not any(row.startswith("—") for row in rows_of(buf.getvalue()))
    out = io.StringIO()
    piped = Show(None, out)
    piped(message_line(now - 3 * DAY, "bob", "old", history=True, dated=True))
    piped(message_line(now, "bob", "now"))
    assert not any(row.startswith("—") for row in out.getvalue().splitlines())


def test_the_first_line_after_midnight_gets_a_date_line() -> None:
    show, buf = terminal()
    show._day = (2000, 1, 1)  # the session began on a day long gone
    now = time.time()
    show(message_line(now, "bob", "live"))
    show(message_line(now, "bob", "live again"))
    rows = rows_of(buf.getvalue())
    assert rows[0] == expected_date_line(now)
    assert len([row for row in rows if row.startswith("—")]) == 1


def test_the_date_line_format() -> None:
    ts = datetime(2026, 11, 30, 12, 0).timestamp()
    assert date_line(ts).plain == "— Monday 30 November 2026 —"
    assert str(date_line(ts).style) == "dim"
