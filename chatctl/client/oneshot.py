"""Requests that need no joining: a server's status, giving up a claimed name.

One connection each, one answer: what ``chatctl status`` and ``chatctl forget`` run.
"""

from __future__ import annotations

from chatctl.client.claims import ClaimBook
from chatctl.client.connection import Connection, TlsOptions
from chatctl.client.core import DEFAULT_TIMEOUT
from chatctl.client.errors import ClientError, Refused
from chatctl.protocol import Error, Forget, Forgotten, StatusReply, StatusRequest, encode


async def fetch_status(
    host: str,
    port: int,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> StatusReply:
    """Ask a server for its status without joining."""
    conn = await Connection.open(host, port, timeout, tls)
    try:
        conn.write(encode(StatusRequest(password=password)))
        reply = await conn.read_reply(timeout)
    finally:
        await conn.close()
    if isinstance(reply, StatusReply):
        return reply
    if isinstance(reply, Error):
        raise Refused(reply.code, reply.message)
    raise ClientError(f"{conn.where} answered the status request with something else")


async def forget_claim(
    host: str,
    port: int,
    name: str,
    claims: ClaimBook,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> None:
    """Drop our claim on ``name`` at that server, there and in ``claims``.

    Raises Refused (``name_claimed``: not our claim) or ClientError (no secret kept).
    """
    where = f"{host}:{port}"
    server_id = claims.server_at(where)
    if server_id is None:
        server_id = (
            await fetch_status(host, port, timeout, tls=tls, password=password)
        ).server.server_id
    secret = claims.secret(server_id, name)
    if server_id is None or secret is None:
        raise ClientError(f"you hold no claim on the name {name} at {where}")
    conn = await Connection.open(host, port, timeout, tls)
    try:
        conn.write(encode(Forget(name, secret, password)))
        answer = await conn.read_reply(timeout)
    finally:
        await conn.close()
    if isinstance(answer, Error):
        raise Refused(answer.code, answer.message)
    if not isinstance(answer, Forgotten):
        raise ClientError(f"{where} answered the forget request with something else")
    claims.drop(server_id, name)
