"""Long lines in the interactive client: wrapped between words, rows indented past the head.

Pure tests of ``chatctl.ui.wrap.hang`` through a Rich console of a given width that
believes it drives a truecolor terminal, as the interactive client's does (soft wrap:
Rich itself breaks nothing, so what is printed is exactly what ``hang`` made).
"""

from __future__ import annotations

import io
import re

from rich.cells import cell_len
from rich.console import Console

from chatctl.ui.render import ChatLine, message_line, notice_line, unsent_line
from chatctl.ui.wrap import MIN_ROW, hang
from tests.test_render import SGR, TS

HEAD = len("[00:00:00] bob: ")


def printed(line: ChatLine, width: int) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=True, color_system="truecolor")
    con.soft_wrap = True
    con.print(hang(line, line.indent, con))
    return buf.getvalue()


def rows_of(line: ChatLine, width: int) -> list[str]:
    return SGR.sub("", printed(line, width)).rstrip("\n").split("\n")


def words(count: int) -> str:
    return " ".join(f"w{i:03d}x" for i in range(count))


def test_a_long_line_breaks_between_words_and_its_rows_start_past_the_name() -> None:
    text = words(30)
    rows = rows_of(message_line(TS, "bob", text), 60)
    assert len(rows) > 1
    assert all(cell_len(row) <= 60 for row in rows), rows
    assert re.match(r"\[\d\d:\d\d:\d\d\] bob: w000x", rows[0])
    for row in rows[1:]:
        assert re.match(rf" {{{HEAD}}}w\d{{3}}x", row), rows
    assert " ".join(row[HEAD:].strip() for row in rows) == text  # no word cut in two


def test_a_line_that_fits_is_left_as_it_is() -> None:
    line = message_line(TS, "bob", "short and sweet")
    con = Console(file=io.StringIO(), width=80)
    assert hang(line, line.indent, con) is line


def test_a_word_longer_than_a_row_still_breaks() -> None:
    word = "x" * 150
    rows = rows_of(message_line(TS, "bob", f"look {word} there"), 60)
    assert all(cell_len(row) <= 60 for row in rows), rows
    assert all(row.startswith(" " * HEAD) for row in rows[1:]), rows
    assert max(cell_len(row) for row in rows) == 60  # the word filled its rows
    assert "".join(row[HEAD:] for row in rows).replace(" ", "") == f"look{word}there"


def test_continuation_lines_are_wrapped_with_the_same_indent() -> None:
    rows = rows_of(message_line(TS, "bob", f"first\n{words(14)}\n\nlast"), 60)
    assert rows[0].endswith("bob: first")
    assert rows[-2:] == ["", " " * HEAD + "last"]  # the blank line stays blank
    middle = rows[1:-2]
    assert len(middle) == 2
    assert all(re.match(rf" {{{HEAD}}}w", row) for row in middle), rows
    assert " ".join(row.strip() for row in middle) == words(14)


def test_wide_characters_count_by_their_cells() -> None:
    text = " ".join(["日本語のテキスト"] * 12)  # 16 cells a word
    rows = rows_of(message_line(TS, "bob", text), 60)
    assert all(cell_len(row) <= 60 for row in rows), rows
    assert " ".join(row[HEAD:].strip() for row in rows) == text


def test_notices_and_unsent_lines_hang_past_their_own_heads() -> None:
    notice = rows_of(notice_line(TS, words(20)), 60)
    assert all(row.startswith(" " * len("[00:00:00] * ") + "w") for row in notice[1:]), notice
    unsent = rows_of(unsent_line(TS, words(20)), 60)
    pad = len("[00:00:00] * not sent: ")
    assert all(re.match(rf" {{{pad}}}w", row) for row in unsent[1:]), unsent


def test_styles_follow_the_text_onto_every_row() -> None:
    out = printed(message_line(TS, "bob", words(30), own=True), 60)
    first, *rest = out.rstrip("\n").split("\n")
    assert "\x1b[1;7;36mbob\x1b[0m: \x1b[3mw000x" in first
    assert rest
    for row in rest:
        assert row.startswith(" " * HEAD + "\x1b[3mw"), repr(row)  # the indent itself plain


def test_a_terminal_too_narrow_for_the_indent_wraps_from_column_0() -> None:
    width = HEAD + MIN_ROW - 1
    rows = rows_of(message_line(TS, "bob", words(20)), width)
    assert all(cell_len(row) <= width for row in rows), rows
    assert all(re.match(r"w\d{3}x", row) for row in rows[1:]), rows
