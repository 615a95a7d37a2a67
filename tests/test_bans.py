"""Bans on the wire: a name and the address it came from are kept out of a room, or off
the server, for a time; clients on distinct loopback addresses (127.0.0.2, ...) stand
for distinct machines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chatctl.server.config import ServerConfig
from chatctl.server.listener import ChatServer
from tests.support import within
from tests.wire import HOST, Wire, welcomed


@asynccontextmanager
async def serving(path: Path, **config: Any) -> AsyncIterator[ChatServer]:
    async with ChatServer(ServerConfig(port=0, history=str(path), **config)) as server:
        yield server


async def hello_from(address: str, port: int, name: str, **hello: Any) -> Wire:
    """A ``hello`` from the local address ``address`` (another "machine" on loopback)."""
    reader, writer = await within(asyncio.open_connection(HOST, port, local_addr=(address, 0)))
    conn = Wire(reader, writer)
    await conn.send(type="hello", version=2, name=name, **hello)
    return conn


async def joined_from(address: str, port: int, name: str, **hello: Any) -> Wire:
    conn = await hello_from(address, port, name, rooms=["#lobby"], **hello)
    await welcomed(conn, "#lobby")
    return conn


def secret_of(conn: Wire) -> str:
    """The secret of the name ``conn`` claimed (a name joins again with it)."""
    (claim,) = [f for f in conn.seen if f["type"] == "claim"]
    secret: str = claim["secret"]
    return secret


async def refused(conn: Wire) -> dict[str, Any]:
    error = await conn.until("error")
    assert await conn.read() is None, "a refused hello closes the connection"
    await conn.close()
    return error


async def test_a_ban_keeps_the_name_and_its_address_out_of_the_room(tmp_path: Path) -> None:
    config = {"operators": ("teacher",), "limit_loopback": True}
    async with serving(tmp_path / "h.sqlite3", **config) as server:
        teacher = await joined_from("127.0.0.1", server.port, "teacher")
        cy = await joined_from("127.0.0.3", server.port, "cy")
        await teacher.send(
            type="mod", room="#lobby", do="ban", name="cy", seconds=600, reason="rude", id="b"
        )
        ban = await cy.until("message", event="ban")
        assert ban["text"] == "banned cy for 10 minutes (rude)"
        out = await cy.until("part", name="cy")
        assert out["reason"] == "banned"
        cy_secret = secret_of(cy)
        await cy.send(type="join", room="#lobby", id="j")
        again = await cy.until("error", id="j")
        assert again["code"] == "banned"
        assert "for 10 minutes more (by teacher: rude)" in again["message"]
        await cy.close()

        other_name = await hello_from("127.0.0.3", server.port, "cy2")  # same machine
        error = await refused(other_name)
        assert error["code"] == "banned"
        assert "#lobby" in error["message"]
        elsewhere = await hello_from("127.0.0.3", server.port, "cy3", rooms=["#games"])
        await welcomed(elsewhere, "#games")  # a room ban is one room's
        await elsewhere.close()
        dee = await joined_from("127.0.0.4", server.port, "dee")  # another machine: fine
        await dee.close()

        await teacher.send(type="bans", room="#lobby", id="l")
        (listed,) = (await teacher.until("bans_reply"))["bans"]
        assert (listed["name"], listed["network"], listed["by"]) == (
            "cy",
            "127.0.0.3/32",
            "teacher",
        )
        assert listed["until"] > time.time() + 590
        await teacher.send(type="mod", room="#lobby", do="unban", name="cy")
        await teacher.until("message", event="unban")
        back = await joined_from("127.0.0.3", server.port, "cy", secret=cy_secret)
        for conn in (back, teacher):
            await conn.close()


async def test_on_one_shared_machine_a_ban_is_the_name_alone(tmp_path: Path) -> None:
    """Everyone on loopback has one address: banning it would ban the class."""
    async with serving(tmp_path / "h.sqlite3") as server:
        alice = await joined_from("127.0.0.1", server.port, "alice")
        bob = await joined_from("127.0.0.1", server.port, "bob")
        await alice.send(type="mod", room="#lobby", do="ban", name="bob")
        await bob.until("part", name="bob")
        await bob.close()
        again = await hello_from("127.0.0.1", server.port, "bob", secret=secret_of(bob))
        assert (await refused(again))["code"] == "banned"
        carol = await joined_from("127.0.0.1", server.port, "carol")
        for conn in (alice, carol):
            await conn.close()


async def test_a_server_ban_closes_the_session_and_outlives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    config = {"operators": ("root",), "limit_loopback": True}
    async with serving(path, **config) as server:
        root = await joined_from("127.0.0.1", server.port, "root")
        root_secret = secret_of(root)
        eve = await joined_from("127.0.0.5", server.port, "eve")
        await eve.send(type="mod", room="#lobby", do="ban", name="root", server=True, id="x")
        assert (await eve.until("error", id="x"))["code"] == "not_operator"
        await root.send(type="mod", room="#lobby", do="ban", name="eve", server=True, reason="spam")
        told = await root.until("message", event="ban")
        assert told["text"] == "banned eve from the server (spam)"
        gone = await eve.until("error")
        assert (gone["code"], "room" in gone) == ("banned", False)
        assert await eve.read() is None  # closed
        await eve.close()
        left = await root.until("leave", name="eve")
        assert left["reason"] == "banned"
        await root.close()
    async with serving(path, **config) as server:
        again = await hello_from("127.0.0.5", server.port, "eve-again")
        error = await refused(again)
        assert error["code"] == "banned"
        assert "this server" in error["message"]
        # Operators are never banned, even from a banned address:
        root = await joined_from("127.0.0.5", server.port, "root", secret=root_secret)
        await root.close()


async def test_a_network_ban_and_nobody_bans_a_server_operator(tmp_path: Path) -> None:
    config = {"operators": ("root",), "limit_loopback": True}
    async with serving(tmp_path / "h.sqlite3", **config) as server:
        root = await joined_from("127.0.0.1", server.port, "root")
        await root.send(type="mod", room="#lobby", do="ban", name="127.0.9.0/24", id="n")
        assert (await root.until("message", event="ban"))["target"] == "127.0.9.0/24"
        error = await refused(await hello_from("127.0.9.7", server.port, "anyone"))
        assert error["code"] == "banned"
        await root.send(type="mod", room="#lobby", do="op", name="root")
        founder = await joined_from("127.0.0.2", server.port, "founder")
        await root.send(type="mod", room="#lobby", do="op", name="founder")
        await founder.until("message", event="op")
        await founder.send(type="mod", room="#lobby", do="ban", name="root", id="r")
        assert (await founder.until("error", id="r"))["code"] == "protected"
        for conn in (root, founder):
            await conn.close()
