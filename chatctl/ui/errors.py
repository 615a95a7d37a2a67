"""The one way a command reports a failure: one red line on stderr, never a traceback."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def print_error(message: str) -> None:
    # soft_wrap: one line even when stderr is a file narrower than the message.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"chatctl: {message}", style="bold red")
    )
