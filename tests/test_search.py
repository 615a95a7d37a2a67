"""``search`` and private history against a real server and real SQLite files.

What is searched (your rooms, your private messages, nobody else's), that the
words are never FTS5 syntax, that a week-old message is found after a restart, and
that private messages are kept between claimed names for those two alone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chatctl.protocol import Message, Private
from chatctl.server.config import ServerConfig
from chatctl.server.history import History
from chatctl.server.listener import ChatServer
from chatctl.server.search import BUSY, Query, SearchIndex, index_path, match_expression
from chatctl.server.store import Store
from tests.wire import Wire, welcomed

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def serving(path: Path, **config: Any) -> AsyncIterator[ChatServer]:
    async with ChatServer(ServerConfig(port=0, history=str(path), **config)) as server:
        yield server


async def joined(port: int, name: str, *rooms: str, **hello: Any) -> Wire:
    conn = await Wire.hello(port, name, rooms=list(rooms or ["#lobby"]), **hello)
    await welcomed(conn, *(rooms or ["#lobby"]))
    return conn


async def say(conn: Wire, room: str, text: str) -> dict[str, Any]:
    await conn.send(type="say", room=room, text=text)
    return await conn.until("message", text=text)


async def search(conn: Wire, words: str, **fields: Any) -> dict[str, Any]:
    await conn.send(type="search", words=words, id="s", **fields)
    return await conn.until("search_reply", id="s")


def texts(reply: dict[str, Any]) -> list[str]:
    return [m["text"] for m in reply["messages"]]


async def test_search_finds_all_the_words_in_your_rooms_only(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice", "#ops", "#lobby")
        bob = await joined(server.port, "bob", "#lobby")
        ops = await say(alice, "#ops", "standup moved to 10:30")
        await say(alice, "#lobby", "the Standup is fun")
        await say(alice, "#lobby", "unrelated")

        mine = await search(alice, "STANDUP")
        assert texts(mine) == ["standup moved to 10:30", "the Standup is fun"]  # oldest first
        first = mine["messages"][0]
        assert (first["room"], first["seq"], first["name"]) == ("#ops", ops["seq"], "alice")
        assert first["time"] == ops["time"]
        assert first["history"] is True
        assert texts(await search(bob, "standup")) == ["the Standup is fun"]  # not #ops
        assert texts(await search(alice, "standup moved")) == ["standup moved to 10:30"]
        assert texts(await search(alice, "stand*")) == texts(mine)
        newest = await search(alice, "standup", limit=1)
        assert texts(newest) == ["the Standup is fun"]
        assert newest["more"] is True
        assert texts(await search(alice, "nowhere")) == []
        await alice.close()
        await bob.close()


async def test_the_words_are_never_search_syntax(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        await say(alice, "#lobby", "deploy moved")
        await say(alice, "#lobby", "lunch is fun")
        # As FTS5 syntax, "moved OR fun" would find both; as words, none has all three.
        assert texts(await search(alice, "moved OR fun")) == []
        for hostile in ('"', 'deploy" OR "lunch', "NEAR(deploy lunch)", "*", "col:deploy", "^"):
            assert (await search(alice, hostile))["messages"] == [], hostile
        assert texts(await search(alice, "deploy*")) == ["deploy moved"]  # a prefix
        assert match_expression('a"b c*') == '"a""b" "c"*'
        frames = await alice.quiet(0.2)
        assert not [f for f in frames if f["type"] == "error"], frames
        await alice.close()


async def test_refused_searches_say_why_and_change_nothing(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        for words, code in (("   ", "empty_message"), ("x" * 201, "message_too_long")):
            await alice.send(type="search", words=words, id="bad")
            error = await alice.until("error", id="bad")
            assert error["code"] == code
        await say(alice, "#lobby", "still here")  # the connection goes on
        await alice.close()
    async with ChatServer(ServerConfig(port=0)) as server:  # --no-history
        bob = await joined(server.port, "bob")
        await bob.send(type="search", words="anything", id="n")
        assert (await bob.until("error", id="n"))["code"] == "no_history"
        await bob.send(type="history", to="alice", id="p")
        assert (await bob.until("error", id="p"))["code"] == "no_history"
        await bob.close()


async def test_a_week_old_message_is_found_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    week_ago = time.time() - 7 * 86400
    store = Store.open(path)  # a file as a server a week ago left it
    history = History(store)
    history.room_seq("#ops")
    history.add(Message(1, week_ago, "alice", "the rollback plan is in the wiki", "#ops"))
    history.mark("#ops", 1)
    history.commit()
    store.close()
    async with serving(path) as server:
        bob = await joined(server.port, "bob", "#ops")
        [found] = (await search(bob, "rollback wiki"))["messages"]
        assert (found["time"], found["seq"], found["room"]) == (week_ago, 1, "#ops")
        await say(bob, "#ops", "new rollback notes")
        await bob.close()
    assert index_path(path).exists()
    async with serving(path) as server:  # the index is kept, and follows what came since
        carol = await joined(server.port, "carol", "#ops")
        assert texts(await search(carol, "rollback")) == [
            "the rollback plan is in the wiki",
            "new rollback notes",
        ]
        await carol.close()


async def test_a_damaged_index_is_rebuilt_from_the_history(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    async with serving(path) as server:
        alice = await joined(server.port, "alice")
        await say(alice, "#lobby", "kept in the history")
        assert texts(await search(alice, "kept")) == ["kept in the history"]
        await alice.close()
    index_path(path).write_bytes(b"not a database at all" * 100)
    async with serving(path) as server:
        bob = await joined(server.port, "bob")
        assert texts(await search(bob, "kept")) == ["kept in the history"]
        await bob.close()


async def test_private_messages_are_kept_for_their_two_claimed_names_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    async with serving(path) as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        carol = await joined(server.port, "carol")
        await alice.send(type="msg", to="bob", text="the secret plan")
        await bob.until("private", text="the secret plan")
        await bob.send(type="msg", to="alice", text="the plan is good")
        await alice.until("private", text="the plan is good")

        for asker, other in ((alice, "bob"), (bob, "alice")):
            await asker.send(type="history", to=other, id="p")
            page = await asker.until("private_history", id="p")
            assert [(m["name"], m["to"], m["text"]) for m in page["messages"]] == [
                ("alice", "bob", "the secret plan"),
                ("bob", "alice", "the plan is good"),
            ]
            assert all(m["history"] is True for m in page["messages"])
        await carol.send(type="history", to="bob", id="c")
        assert (await carol.until("private_history", id="c"))["messages"] == []
        found = await search(alice, "plan")
        assert [m["text"] for m in found["private"]] == ["the secret plan", "the plan is good"]
        assert (await search(carol, "plan"))["private"] == []
        for conn in (alice, bob, carol):
            await conn.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM privates").fetchone()[0] == 2


async def test_no_pm_history_keeps_no_private_message(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    async with serving(path, private_history=False) as server:
        alice = await joined(server.port, "alice")
        bob = await joined(server.port, "bob")
        await alice.send(type="msg", to="bob", text="not kept")
        await bob.until("private", text="not kept")
        await alice.send(type="history", to="bob", id="p")
        error = await alice.until("error", id="p")
        assert error["code"] == "no_history"
        assert "--no-pm-history" in error["message"]
        assert (await search(alice, "kept"))["private"] == []
        await alice.close()
        await bob.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM privates").fetchone()[0] == 0


async def test_a_forgotten_claim_takes_its_private_messages_with_it(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined(server.port, "alice")
        bob = await Wire.hello(server.port, "bob")
        claim = await bob.until("claim")
        await bob.until("room")
        await alice.send(type="msg", to="bob", text="for the first bob")
        await bob.until("private", text="for the first bob")
        await bob.send(type="forget", name="bob", secret=claim["secret"])
        await bob.until("forgotten")
        await bob.close()
        await alice.until("leave", name="bob")
        newcomer = await joined(server.port, "bob")  # the name is free: a new claim
        await newcomer.send(type="history", to="alice", id="p")
        assert (await newcomer.until("private_history", id="p"))["messages"] == []
        assert (await search(newcomer, "first"))["private"] == []
        await alice.close()
        await newcomer.close()


def _messages(history: History, room: str, texts: list[str], start: int = 1) -> None:
    now = time.time()
    for i, text in enumerate(texts, start):
        history.add(Message(i, now, "alice", text, room))
    history.mark(room, start + len(texts) - 1)
    history.commit()


def test_a_search_first_indexes_what_a_flood_left_behind(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "h.sqlite3")
    history = History(store)
    history.room_seq("#ops")
    index = SearchIndex(store.path, store.server_id)
    index.start()
    try:
        flood = BUSY + 500  # more than a busy pass indexes
        _messages(history, "#ops", [f"flood {i}" for i in range(flood)] + ["the needle"])
        found = index.search(Query("needle", ["#ops"], None, 5)).result(10)
        assert [m.text for m in found.messages] == ["the needle"]
        history.add_private(Private(time.time(), "a", "b", "a private needle"), ("a", "b"))
        history.commit()
        found = index.search(Query("needle", ["#ops"], "b", 5)).result(10)
        assert [p.text for p in found.private] == ["a private needle"]
        assert index.search(Query("needle", ["#ops"], "c", 5)).result(10).private == []
    finally:
        index.stop()
        store.close()


def test_what_retention_deletes_is_no_longer_found(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "h.sqlite3")
    history = History(store)
    history.room_seq("#ops")
    index = SearchIndex(store.path, store.server_id)
    index.start()
    try:
        _messages(history, "#ops", [f"old note {i}" for i in range(5)])
        assert len(index.search(Query("note", ["#ops"], None, 50)).result(10).messages) == 5
        assert history.prune(before=None, keep=2) == 3
        found = index.search(Query("note", ["#ops"], None, 50)).result(10)
        assert [m.text for m in found.messages] == ["old note 3", "old note 4"]
    finally:
        index.stop()
        store.close()
