"""The one way a command reports a failure: one red line on stderr, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from chatctl.addresses import Address
    from chatctl.client import ClientError


def print_error(message: str) -> None:
    # soft_wrap: one line even when stderr is a file narrower than the message.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"chatctl: {message}", style="bold red")
    )


def print_skipped(server: Address, error: ClientError, following: Address) -> None:
    """A server of the list that is not there: one line, and on to the next."""
    print_error(f"{server}: {error.reason}; trying {following}")
