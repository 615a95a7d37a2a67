"""Dial and say ``hello`` until welcomed, presenting the name's secret for the right server.

A client that does not know which server is at an address presents the secret the
claims book's hint points to; a ``name_claimed`` answer names the server's identity,
and the handshake is tried once more with the secret kept for that one (a server that
moved to another port costs one extra connection, once).
"""

from __future__ import annotations

import msgspec

from chatctl.client.claims import ClaimBook
from chatctl.client.connection import Connection, TlsOptions
from chatctl.client.errors import ClientError, Refused
from chatctl.protocol import Error, Hello, Welcome, encode


async def handshake(
    hello: Hello,
    host: str,
    port: int,
    timeout: float,
    tls: TlsOptions | None,
    claims: ClaimBook | None,
) -> tuple[Connection, Welcome]:
    """The open connection and its welcome; ``hello``'s secret is filled in from ``claims``.

    Raises Refused with the server's reason, ClientError for an answer that is not
    chatctl's, or what ``Connection.open`` raises.
    """
    name = hello.name
    server_id = claims.server_at(f"{host}:{port}") if claims is not None else None
    for _attempt in range(2):  # a second time with the secret for the identity learnt
        secret = claims.secret(server_id, name) if claims is not None else None
        conn = await Connection.open(host, port, timeout, tls)
        try:
            conn.write(encode(msgspec.structs.replace(hello, secret=secret)))
            reply = await conn.read_reply(timeout)
        except BaseException:
            await conn.close()
            raise
        if isinstance(reply, Welcome):
            return conn, reply
        await conn.close()
        learnt = reply.server_id if isinstance(reply, Error) else None
        if (
            claims is None
            or learnt is None
            or learnt == server_id
            or claims.secret(learnt, name) is None
        ):
            break
        server_id = learnt
    if isinstance(reply, Error):
        retry_after = None if reply.retry_after_ms is None else reply.retry_after_ms / 1000
        raise Refused(reply.code, reply.message, retry_after)
    raise ClientError(f"{conn.where} answered the handshake with '{reply.__struct_config__.tag}'")
