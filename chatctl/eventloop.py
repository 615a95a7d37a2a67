"""The event loop every command runs on: uvloop when it is installed, else asyncio's own.

uvloop is an optional extra (``pip install 'chatctl[speed]'``) rather than a dependency: it
is a compiled wheel that does not exist for every platform (none for Windows), and the
stdlib loop is fast enough for a team's room. Where it is installed it is used without
being asked for, because a server owner who installed it wants it. ``CHATCTL_LOOP``
overrides the choice: ``asyncio`` to rule uvloop out when chasing a bug, ``uvloop`` to be
sure of it (a missing uvloop is then an error, not a silent fallback).

No terminal code here: the caller reports ``LoopChoiceError`` its own way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

LOOP_ENV = "CHATCTL_LOOP"
LOOPS = ("uvloop", "asyncio")

_T = TypeVar("_T")


class LoopChoiceError(Exception):
    """``CHATCTL_LOOP`` asks for something this installation cannot give; one line for the user."""


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop constructor; ImportError when it is not installed or cannot load."""
    import uvloop

    # Annotated so that strict mypy stays clean where uvloop is absent (then it is Any).
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def choose() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The loop to run on, as (name, factory); factory None is asyncio's default loop.

    Raises ``LoopChoiceError`` before anything has started, so a command fails without
    side effects.
    """
    wanted = os.environ.get(LOOP_ENV, "").strip().lower()
    if wanted not in ("", *LOOPS):
        raise LoopChoiceError(
            f"{LOOP_ENV}={os.environ[LOOP_ENV]!r} is not a known event loop: "
            "use 'uvloop' or 'asyncio', or leave it unset to use uvloop when it is installed"
        )
    if wanted == "asyncio":
        return "asyncio", None
    try:
        factory = _uvloop_factory()
    except ImportError as exc:
        if wanted == "uvloop":
            why = (
                "uvloop is not installed"
                if isinstance(exc, ModuleNotFoundError) and exc.name == "uvloop"
                else f"uvloop cannot be imported ({exc})"
            )
            raise LoopChoiceError(
                f"{LOOP_ENV}=uvloop but {why}: pip install 'chatctl[speed]', "
                f"or set {LOOP_ENV}=asyncio"
            ) from None
        return "asyncio", None
    return "uvloop", factory


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` on the chosen loop.

    The coroutine is closed if the choice fails, so no "never awaited" warning follows the
    error.
    """
    try:
        _, factory = choose()
    except LoopChoiceError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """The running loop's family, ``uvloop`` or ``asyncio``, for logs.

    Read from the loop itself, not from ``choose()``: a log should say what actually runs.
    """
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.partition(".")[0] == "uvloop" else "asyncio"
