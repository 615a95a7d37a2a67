"""Fitting a chat line to the terminal's width: word wrap with a hanging indent.

The interactive client prints with soft wrap, so Rich leaves long lines to the
terminal, which breaks them mid-word at the last column and goes on at column 0,
where the rest could pass for a line of its own. ``hang`` breaks them first:
between words where it can (a word longer than a row still has to break), with
every further row starting past the head, in line with the continuation lines of
a multi-line message. Pipes never wrap: they print ``Text.plain``.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

#: Less room than this beside the indent (a narrow terminal), and rows start at column 0.
MIN_ROW = 20


def hang(line: Text, indent: int, console: Console) -> Text:
    """``line`` in rows that fit ``console.width``; rows after the first indented past
    its first ``indent`` characters (what continuation lines already start with)."""
    width = console.width
    if "\n" not in line.plain and line.cell_len <= width:
        return line  # the common line: nothing to do
    logical = line.split("\n", allow_blank=True)
    head = logical[0][:indent]
    pad = cell_len(head.plain)
    if width - pad < MIN_ROW:
        head, indent, pad = Text(), 0, 0
    rows: list[Text] = []
    for number, part in enumerate(logical):
        body = part[indent:]
        wrapped = list(body.wrap(console, width - pad, overflow="fold"))
        for index, row in enumerate(wrapped or [Text()]):
            row.rstrip()
            if number == 0 and index == 0:
                rows.append(head + row)
            else:  # a blank line stays blank, without trailing spaces
                rows.append(Text(" " * pad) + row if row.plain else row)
    return Text("\n").join(rows)
