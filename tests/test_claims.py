"""Claimed names against a real server with a real history file, and real ``chatctl``
processes with their own config folders (the claims file).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chatctl.client import ChatClient, ClaimBook, Refused
from chatctl.exitcodes import ExitCode
from chatctl.protocol import Private
from chatctl.server.claims import Claims
from chatctl.server.config import ServerConfig
from chatctl.server.history import History
from chatctl.server.listener import ChatServer
from chatctl.server.store import SCHEMA_VERSION, Store
from tests.support import PipedClient, async_wait_until, run_chatctl, serve_process, within
from tests.wire import Wire, welcomed


@asynccontextmanager
async def serving(path: Path) -> AsyncIterator[ChatServer]:
    async with ChatServer(ServerConfig(port=0, history=str(path))) as server:
        yield server


async def first_join(port: int, name: str) -> tuple[str, str]:
    """Join as ``name`` for the first time: (server_id, secret) from welcome and claim."""
    conn = await Wire.hello(port, name)
    welcome = await conn.until("welcome")
    claim = await conn.read()
    assert claim is not None
    assert claim["type"] == "claim", conn.seen
    assert claim["name"] == name
    assert claim["server_id"] == welcome["server_id"]
    await conn.close()
    return welcome["server_id"], claim["secret"]


async def refusal(port: int, name: str, **hello: Any) -> dict[str, Any]:
    """A hello that must be refused: the error (and the connection closed after it)."""
    conn = await Wire.hello(port, name, **hello)
    error = await conn.read()
    assert error is not None
    assert error["type"] == "error", conn.seen
    assert await conn.read() is None, "the connection stays open after a refused hello"
    await conn.close()
    return error


async def test_a_name_is_claimed_on_first_use_and_needs_its_secret_after(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        server_id, secret = await first_join(server.port, "alice")
        assert len(secret) >= 22  # at least 128 bits of base64

        for hello in ({}, {"secret": "not-the-secret"}):
            error = await refusal(server.port, "ALICE", **hello)  # names are case-insensitive
            assert error["code"] == "name_claimed"
            assert error["server_id"] == server_id  # to find the secret by
            assert "not-the-secret" not in json.dumps(error)  # what was tried is never quoted

        again = await Wire.hello(server.port, "alice", secret=secret)
        await again.until("welcome")
        state = await again.read()
        assert state is not None
        assert state["type"] == "room", "no second claim for a name already claimed"
        await again.close()
        status = server.hub.status()
        assert status.server.server_id == server_id
        assert secret not in json.dumps([u.name for u in status.users])


async def test_wrong_secrets_are_throttled_per_address(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        _, secret = await first_join(server.port, "alice")
        for _ in range(3):
            error = await refusal(server.port, "alice", secret="guess")
            assert error["code"] == "name_claimed"
        error = await refusal(server.port, "alice", secret=secret)  # even the right one waits
        assert error["code"] == "throttled"
        assert error["retry_after_ms"] > 0


async def test_version_1_cannot_take_a_claimed_name_nor_claim_one(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        await first_join(server.port, "alice")
        error = await refusal(server.port, "alice", version=1)
        assert error["code"] == "name_claimed"
        old = await Wire.hello(server.port, "oldtimer", version=1)
        welcome = await old.until("welcome")
        assert "server_id" not in welcome
        assert not [f for f in await old.quiet() if f["type"] == "claim"]
        await old.close()
        assert server.hub.claims is not None
        assert server.hub.claims.check("oldtimer", None).value == "free"


async def test_nick_to_a_claimed_name_needs_its_secret_and_a_free_one_is_claimed(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        _, alice_secret = await first_join(server.port, "alice")
        bob = await Wire.hello(server.port, "bob")
        await bob.until("room")
        await bob.send(type="nick", name="alice", id="n1")
        error = await bob.until("error", id="n1")
        assert error["code"] == "name_claimed"
        await bob.send(type="nick", name="robert", id="n2")
        claim = await bob.until("claim")
        assert claim["name"] == "robert"
        await bob.send(type="nick", name="alice", id="n3", secret=alice_secret)
        renamed = await bob.until("nick", new="alice")
        assert renamed["name"] == "robert"
        await bob.close()


async def test_forget_drops_a_claim_proven_by_its_secret(tmp_path: Path) -> None:
    async with serving(tmp_path / "h.sqlite3") as server:
        _, secret = await first_join(server.port, "alice")
        conn = await Wire.hello(server.port, "x")  # any connection may ask, joined or not
        await conn.until("room")
        await conn.send(type="forget", name="alice", secret="wrong")
        error = await conn.until("error")
        assert error["code"] == "name_claimed"
        await conn.send(type="forget", name="alice", secret=secret)
        assert (await conn.until("forgotten"))["name"] == "alice"
        await conn.close()
        server_id, _ = await first_join(server.port, "alice")  # anyone's now, claimed anew
        assert server_id


async def test_claims_survive_a_restart_and_are_kept_as_hashes(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    async with serving(path) as server:
        server_id, secret = await first_join(server.port, "alice")
    async with serving(path) as server:
        error = await refusal(server.port, "alice")
        assert error["code"] == "name_claimed"
        assert error["server_id"] == server_id  # the same server, by its own identity
    assert secret.encode() not in path.read_bytes()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM claims").fetchone()[0] == 1


def test_unused_claims_expire_but_not_those_online(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "h.sqlite3")
    claims = Claims(store)
    assert claims.claim("old", now=1000.0) is not None
    assert claims.claim("online", now=1000.0) is not None
    assert claims.claim("recent", now=5000.0) is not None
    assert claims.expire(before=2000.0, online={"online"}) == 1
    assert [claims.check(n, None).value for n in ("old", "online", "recent")] == [
        "free",
        "missing",
        "missing",
    ]
    store.close()


async def test_no_claims_without_history() -> None:
    async with ChatServer(ServerConfig(port=0)) as server:
        conn = await Wire.hello(server.port, "alice")
        welcome = await conn.until("welcome")
        assert "server_id" not in welcome
        assert not [f for f in await conn.quiet() if f["type"] == "claim"]
        await conn.close()


#: What each older schema lacked: dropped to make a file as that release wrote it.
_ADDED_AFTER = {1: ["claims", "marks", "privates", "bans"], 2: ["privates", "bans"], 3: ["bans"]}
#: Columns schema 4 added (moderation events, topics), which every older one lacked.
_COLUMNS_ADDED_IN_4 = [("messages", "event"), ("messages", "target"), ("rooms", "topic")]


@pytest.mark.parametrize("version", sorted(_ADDED_AFTER))
def test_an_older_schema_is_migrated(tmp_path: Path, version: int) -> None:
    path = tmp_path / "h.sqlite3"
    Store.open(path).close()
    with sqlite3.connect(path) as db:  # back to what an earlier release wrote
        for table in _ADDED_AFTER[version]:
            db.execute(f"DROP TABLE {table}")
        for table, column in _COLUMNS_ADDED_IN_4:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute(f"PRAGMA user_version={version}")
    store = Store.open(path)
    assert Claims(store).claim("alice", now=1.0) is not None
    history = History(store)
    history.add_private(Private(1.0, "alice", "bob", "hi"), ("alice", "bob"))
    history.commit()
    assert [p.text for p in history.privates(("bob", "alice"), 10)[0]] == ["hi"]
    history.room_seq("#ops")
    history.set_topic("#ops", "kept")
    history.commit()
    assert history.topic("#ops") == "kept"
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_the_client_core_keeps_its_secret_and_finds_a_server_that_moved(
    tmp_path: Path,
) -> None:
    """The book is keyed by the server's identity: the same file on another port is known."""
    path = tmp_path / "h.sqlite3"
    book = ClaimBook(tmp_path / "config" / "claims.json")
    async with serving(path) as server:
        client = await ChatClient.join("127.0.0.1", server.port, "alice", claims=book)
        await client.close()
        assert book.secret(client.welcome.server_id, "alice") is not None
        mode = stat.S_IMODE(os.stat(book.path).st_mode)
        assert mode == 0o600, oct(mode)
        again = await ChatClient.join("127.0.0.1", server.port, "alice", claims=book)
        await again.close()
    async with serving(path) as moved:  # another port: no hint for this address
        client = await ChatClient.join("127.0.0.1", moved.port, "alice", claims=book)
        await client.close()
        with pytest.raises(Refused) as refused:
            await within(ChatClient.join("127.0.0.1", moved.port, "alice"))
        assert refused.value.code == "name_claimed"


def test_chatctl_join_keeps_the_name_and_forget_gives_it_up(tmp_path: Path) -> None:
    mine = {"CHATCTL_CONFIG_DIR": str(tmp_path / "mine")}
    theirs = {"CHATCTL_CONFIG_DIR": str(tmp_path / "theirs")}
    with serve_process("--history", str(tmp_path / "h.sqlite3"), "--verbose") as serve:
        port = str(serve.port)
        first = run_chatctl("join", "alice", "--port", port, input="hello\n", **mine)
        assert first.returncode == 0, first.stderr
        assert "alice" in (tmp_path / "mine" / "claims.json").read_text()
        second = run_chatctl("join", "alice", "--port", port, input="again\n", **mine)
        assert second.returncode == 0, second.stderr
        stolen = run_chatctl("join", "alice", "--port", port, input="me too\n", **theirs)
        assert stolen.returncode == ExitCode.NAME_CLAIMED, stolen
        assert "claimed" in stolen.stderr
        assert "Traceback" not in stolen.stderr
        assert len(stolen.stderr.strip().splitlines()) == 1, stolen.stderr

        gone = run_chatctl("forget", "alice", "--port", port, **mine)
        assert gone.returncode == 0, gone.stderr
        assert "no longer claimed" in gone.stdout
        taken = run_chatctl("join", "alice", "--port", port, input="mine now\n", **theirs)
        assert taken.returncode == 0, taken.stderr
        lost = run_chatctl("join", "alice", "--port", port, input="hey\n", **mine)
        assert lost.returncode == ExitCode.NAME_CLAIMED
    claims_file = json.loads((tmp_path / "theirs" / "claims.json").read_text())
    secrets_ = [e["secret"] for names in claims_file["claims"].values() for e in names.values()]
    assert secrets_
    log = serve.log.text()
    assert all(secret not in log for secret in secrets_), "a secret reached the server log"


# --------------------------------------------------------------------------- since you left


async def test_a_rejoin_gets_what_came_after_its_read_mark(tmp_path: Path) -> None:
    async with ChatServer(ServerConfig(port=0, history=str(tmp_path / "h.sqlite3"), rate=0)) as s:
        _, secret = await first_join(s.port, "carol")
        alice = await Wire.hello(s.port, "alice")
        await alice.until("room")
        for i in range(5):
            await alice.send(type="say", room="#lobby", text=f"before {i}")
        last = await alice.until("message", text="before 4")

        carol = await Wire.hello(s.port, "carol", secret=secret)
        await carol.until("room")
        await carol.send(type="read", room="#lobby", seq=last["seq"])
        await carol.send(type="read", room="#lobby", seq=1)  # marks never move back
        await carol.send(type="read", room="#nowhere", seq=1, id="r1")
        assert (await carol.until("error"))["code"] == "not_in_room"
        await carol.close()
        await alice.until("leave", name="carol")
        for i in range(3):
            await alice.send(type="say", room="#lobby", text=f"while away {i}")
        await alice.until("message", text="while away 2")

        back = await Wire.hello(s.port, "carol", secret=secret, history=4)
        state = await back.until("room")
        assert (state["history"], state["unread"]) == (4, 3)
        assert "more" not in state
        replay = [await back.read() for _ in range(4)]
        assert [m["text"] for m in replay if m] == ["before 4"] + [
            f"while away {i}" for i in range(3)
        ]
        await back.close()
        await alice.close()


async def test_a_room_that_was_quiet_while_you_were_in_it_has_news_since_you_left(
    tmp_path: Path,
) -> None:
    """Nothing was shown, so the client never sent a read mark: joining made one."""
    async with ChatServer(ServerConfig(port=0, history=str(tmp_path / "h.sqlite3"), rate=0)) as s:
        alice = await Wire.hello(s.port, "alice", rooms=["#ops"])
        await alice.until("room")
        await alice.send(type="say", room="#ops", text="before carol")
        await alice.until("message", text="before carol")
        _, secret = await first_join(s.port, "carol")  # #lobby: empty
        carol = await Wire.hello(s.port, "carol", secret=secret, rooms=["#ops"])
        await carol.until("room")  # #ops, nothing replayed or read
        await carol.close()
        await alice.send(type="join", room="#lobby")
        await alice.until("room", room="#lobby")
        for room in ("#ops", "#lobby"):
            await alice.send(type="say", room=room, text=f"while away in {room}")
            await alice.until("message", text=f"while away in {room}")

        back = await Wire.hello(s.port, "carol", secret=secret, rooms=["#ops", "#lobby"], history=5)
        ops = await back.until("room", room="#ops")
        assert (ops["history"], ops["unread"]) == (2, 1), ops  # "before carol" was before
        lobby = await back.until("room", room="#lobby")
        assert (lobby["history"], lobby["unread"]) == (1, 1), lobby
        await back.close()
        await alice.close()


async def test_more_than_500_unread_says_how_many_more(tmp_path: Path) -> None:
    async with ChatServer(ServerConfig(port=0, history=str(tmp_path / "h.sqlite3"), rate=0)) as s:
        _, secret = await first_join(s.port, "carol")
        alice = await Wire.hello(s.port, "alice")
        await alice.until("room")
        await alice.send(type="say", room="#lobby", text="seen")
        seen = await alice.until("message", text="seen")
        carol = await Wire.hello(s.port, "carol", secret=secret)
        await carol.until("room")
        await carol.send(type="read", room="#lobby", seq=seen["seq"])
        await carol.close()
        await alice.until("leave", name="carol")
        for i in range(0, 620, 20):
            batch = "".join(
                json.dumps({"type": "say", "room": "#lobby", "text": f"m{n}"}) + "\n"
                for n in range(i, i + 20)
            )
            alice.writer.write(batch.encode())
            await alice.until("message", text=f"m{i + 19}")
        back = await Wire.hello(s.port, "carol", secret=secret, history=50)
        state = await back.until("room")
        assert (state["history"], state["unread"], state["more"]) == (500, 500, 120)
        await back.close()
        await alice.close()


async def test_the_client_core_sends_what_was_shown_when_it_leaves(tmp_path: Path) -> None:
    book = ClaimBook(tmp_path / "config" / "claims.json")
    async with ChatServer(ServerConfig(port=0, history=str(tmp_path / "h.sqlite3"))) as s:
        client = await ChatClient.join("127.0.0.1", s.port, "dora", claims=book)
        await client.say("hello")
        async for frame in client:
            if getattr(frame, "text", None) == "hello":
                client.shown("#lobby", frame.seq)  # type: ignore[union-attr]
                break
        await client.leave()
        await within(client.wait_ended(5))
        await client.close()
        history = s.hub.history
        assert history is not None
        await async_wait_until(lambda: history.read_mark("dora", "#lobby") is not None)
        assert history.read_mark("dora", "#lobby") == 2


# --------------------------------------------------------------------------- taking a name back


async def test_the_secret_with_replace_takes_the_name_from_a_stale_connection(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "h.sqlite3") as s:
        _, secret = await first_join(s.port, "alice")
        stale = await Wire.hello(s.port, "alice", secret=secret)
        await welcomed(stale, "#lobby")
        bob = await Wire.hello(s.port, "bob")
        await welcomed(bob, "#lobby")
        # Without replace, or without the secret, a name in use is taken, as always.
        assert (await refusal(s.port, "alice", secret=secret))["code"] == "name_taken"
        assert (await refusal(s.port, "alice", replace=True))["code"] == "name_taken"
        wrong = await refusal(s.port, "alice", secret="A" * 32, replace=True)
        assert wrong["code"] == "name_claimed"
        await stale.send(type="ping")
        await stale.until("pong")  # all that left the stale connection alone

        back = await Wire.hello(s.port, "alice", secret=secret, replace=True)
        await welcomed(back, "#lobby")
        error = await stale.until("error")
        assert error["code"] == "replaced", error
        assert "alice joined again from 127.0.0.1:" in error["message"]
        assert await stale.read() is None  # closed after it
        assert not [f for f in stale.seen if f["type"] == "leave"], stale.seen  # not its own
        left = await bob.until("leave", name="alice")
        assert left["reason"] == "replaced"
        await bob.until("join", name="alice")
        await back.send(type="say", room="#lobby", text="back again")
        assert (await bob.until("message", text="back again"))["name"] == "alice"
        status = s.hub.status()
        assert [u.name for u in status.users].count("alice") == 1
        assert status.server.leave_reasons.get("replaced") == 1
        for conn in (stale, bob, back):
            await conn.close()


async def test_without_history_nobody_takes_a_name_over() -> None:
    async with ChatServer(ServerConfig(port=0)) as s:
        held = await Wire.hello(s.port, "alice")
        await welcomed(held, "#lobby")
        error = await refusal(s.port, "alice", secret="A" * 32, replace=True)
        assert error["code"] == "name_taken"
        await held.send(type="ping")
        await held.until("pong")
        await held.close()


def test_chatctl_join_takes_its_name_back_and_the_old_one_stops(tmp_path: Path) -> None:
    config = {"CHATCTL_CONFIG_DIR": str(tmp_path / "config")}  # one person's claims.json
    with serve_process("--history", str(tmp_path / "h.sqlite3")) as serve:
        first = PipedClient("alice", serve.port, extra_env=config).joined()
        try:
            second = PipedClient("alice", serve.port, extra_env=config).joined()
            try:
                code = first.wait(10)
                assert code == ExitCode.REPLACED, first.everything()
                assert re.search(
                    r"alice joined again from 127\.0\.0\.1:\d+: this connection is closed",
                    first.err.text(),
                ), first.everything()
                assert "reconnect" not in first.everything()
                assert "Traceback" not in first.everything()
                second.send("still here")
                second.out.wait_for(r"alice: still here$")
                assert second.proc.poll() is None
            finally:
                second.kill()
        finally:
            first.kill()
