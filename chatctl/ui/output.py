"""Where lines go: Rich styles for a terminal, wrapped to its width with a hanging
indent; ``Text.plain`` for a pipe, one line per line of the message.

In a terminal a date line comes before a line whose local date is not the one of
the line before it (the first is compared with today): replayed messages from an
earlier day, and the first line after midnight. A pipe gets none (``chatctl.ui.render``).
"""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.text import Text

from chatctl.ui.render import date_line, day_of
from chatctl.ui.wrap import hang


class Show:
    """Prints one rendered line; in a terminal it can also ring the bell."""

    def __init__(self, console: Console | None, out: TextIO | None = None) -> None:
        self.console = console
        self.out = out
        #: The local date of the last line shown: today before the first one.
        self._day = day_of(time.time())

    @property
    def dates(self) -> bool:
        """Whether date lines separate the days (a terminal), or lines must carry their own."""
        return self.console is not None

    def __call__(self, line: Text) -> None:
        if self.console is not None:
            when: float | None = getattr(line, "when", None)
            if when is not None and (day := day_of(when)) != self._day:
                self._day = day
                self.console.print(date_line(when))
            self.console.print(hang(line, getattr(line, "indent", 0), self.console))
        elif self.out is not None:
            self.out.write(line.plain + "\n")
            self.out.flush()

    def bell(self) -> None:
        """Ring the terminal's bell (a mention, a private message); pipes have none."""
        if self.console is not None:
            self.console.bell()
