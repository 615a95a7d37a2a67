"""Where lines go: Rich styles for a terminal, wrapped to its width with a hanging
indent; ``Text.plain`` for a pipe, one line per line of the message."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.text import Text

from chatctl.ui.wrap import hang


class Show:
    """Prints one rendered line; in a terminal it can also ring the bell."""

    def __init__(self, console: Console | None, out: TextIO | None = None) -> None:
        self.console = console
        self.out = out

    def __call__(self, line: Text) -> None:
        if self.console is not None:
            self.console.print(hang(line, getattr(line, "indent", 0), self.console))
        elif self.out is not None:
            self.out.write(line.plain + "\n")
            self.out.flush()

    def bell(self) -> None:
        """Ring the terminal's bell (a mention, a private message); pipes have none."""
        if self.console is not None:
            self.console.bell()
