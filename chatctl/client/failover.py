"""Several servers for one chat: which to try, in what order, and when to wait.

A client given a list of servers (``--server`` repeated, ``CHATCTL_SERVERS``) that
share rooms joins the first one that answers. After losing one it tries the others at
once, in list order after the lost one; only when they all failed does it back off
(``errors.backoff``), before each round of all of them, the lost one last. With a
single server this is exactly the old behaviour: one attempt per backoff delay.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from chatctl.addresses import Address
from chatctl.client.errors import ClientError, ConnectionLost, Refused, Unreachable, backoff
from chatctl.protocol import ErrorCode

T = TypeVar("T")

#: Refusals that say "not this server, not now", not "not you": another may take us.
_BUSY = frozenset({ErrorCode.SERVER_FULL, ErrorCode.THROTTLED})


def try_another(exc: ClientError) -> bool:
    """Whether another server of the list may succeed where this one failed: it was not
    there, went away mid-handshake, or was too busy. A refusal of us (a name, a password,
    a ban, TLS trust) would be the same on every server of the cluster."""
    if isinstance(exc, Unreachable | ConnectionLost):
        return True
    return isinstance(exc, Refused) and exc.code in _BUSY


async def first_answer(
    servers: Sequence[Address],
    attempt: Callable[[Address], Awaitable[T]],
    skipped: Callable[[Address, ClientError, Address], None],
) -> tuple[int, T]:
    """``attempt`` on each server in turn until one succeeds: its index and result.

    A failure worth another server is reported to ``skipped(server, error, next one)``
    and the next is tried; any other failure, or the last server's, is raised.
    """
    for index, server in enumerate(servers):
        try:
            return index, await attempt(server)
        except ClientError as exc:
            if index + 1 == len(servers) or not try_another(exc):
                raise
            skipped(server, exc, servers[index + 1])
    raise ValueError("no server to try")


def rounds(
    count: int, lost: int, delays: Iterator[float] | None = None
) -> Iterator[tuple[int, float]]:
    """(server index, seconds to wait before trying it) for each reconnection attempt.

    First the others, in list order after ``lost``, at once. The lost one is not among
    them: killed a moment ago, it may still accept a connection while it dies and then
    close it without a word, which reads as a server that is not chatctl's. Then rounds
    of all of them, the lost one last, each after the next backoff delay. With one
    server, that is one attempt per backoff delay.
    """
    waits = delays if delays is not None else backoff()
    others = [(lost + step) % count for step in range(1, count)]
    for index in others:
        yield index, 0.0
    everyone = [*others, lost]
    while True:
        delay = next(waits)
        for step, index in enumerate(everyone):
            yield index, delay if step == 0 else 0.0
