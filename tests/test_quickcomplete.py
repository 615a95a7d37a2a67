"""The completion fast path says, byte for byte, what Typer says: both run as processes.

``chatctl`` (the console script) answers from ``chatctl.cli.completion_data`` without
Typer where it can; ``python -c '...app()'`` is Typer's own answer to the same request,
with the same hash seed (Click orders the help option's names as a set does). Each fast
answer is also checked to have imported no Typer, and each request the table cannot
follow to have been left to Typer, from ``-X importtime``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatctl.cli.quickcomplete import _installed, split
from tests.support import FACTOR, chatctl_command, env

pytestmark = pytest.mark.timeout(120)

TYPER_ITSELF = "import sys; sys.argv[0] = 'chatctl'; from chatctl.cli.app import app; app()"
#: Wide enough that Rich wraps no help text: zsh and fish can be answered from the table.
WIDE = {"COLUMNS": "250"}

#: Lines the table answers (bash): the root, each command, options and their values,
#: arguments, what was given already, ``=``, quotes, prefixes.
FAST = [
    "chatctl ",
    "chatctl s",
    "chatctl j",
    "chatctl x",
    "chatctl -",
    "chatctl --",
    "chatctl --v",
    "chatctl --show-completion=",
    "chatctl serve ",
    "chatctl serve -",
    "chatctl serve --max-",
    "chatctl serve --port ",
    "chatctl serve --port 50",
    "chatctl serve --port=",
    "chatctl serve --port 5000 --",
    "chatctl serve --verbose -",
    "chatctl serve -v --tls --",
    "chatctl serve --allow 10.0.0.0/8 --al",
    "chatctl serve --host --port ",
    "chatctl serve --host=0.0.0.0 --h",
    "chatctl serve --port",
    "chatctl serve stray --",
    "chatctl join ",
    "chatctl join b",
    "chatctl join bob ",
    "chatctl join bob --r",
    "chatctl join 'bob' --r",
    "chatctl join --room ops -",
    "chatctl join -r ",
    "chatctl join bob --port -",
    "chatctl status --json --",
    "chatctl status --help -",
    "chatctl bench ",
    "chatctl bench s",
    "chatctl bench S",
    "chatctl bench fanout ",
    "chatctl bench fanout --",
    "chatctl bench -n 5 ",
    "chatctl bench --clients 5 r",
    "chatctl bench --clients",
    "chatctl bench -",
    "chatctl bench --=x",
]

#: zsh and fish ask in their own words (no COMP_CWORD: a trailing space or not) and print
#: help texts: these lines cover both, the rest of the logic being bash's.
SHELL_FAST = [
    "chatctl",
    "chatctl ",
    "chatctl s",
    "chatctl --",
    "chatctl serve ",
    "chatctl serve --max-",
    "chatctl serve --port ",
    "chatctl serve --port=",
    "chatctl serve --verbose -",
    "chatctl join bob ",
    "chatctl status --json --",
    "chatctl status -",
    "chatctl bench ",
    "chatctl bench s",
]

#: Lines the table leaves to Typer: an option before the command, an unknown one, short
#: options run together, ``--``, a switch given a value, an unknown command.
TYPER = [
    "chatctl --version ",
    "chatctl -h serve ",
    "chatctl nope ",
    "chatctl serve --nope ",
    "chatctl serve -vh ",
    "chatctl serve -- ",
    "chatctl status --json=1 -",
    "chatctl bench -n5 ",
]


@dataclass(frozen=True)
class Answer:
    code: int
    stdout: bytes
    stderr: bytes
    #: The modules the process imported (for the fast path, which runs with -X importtime).
    modules: frozenset[str]


def request(shell: str, line: str, fish_action: str = "get-args") -> dict[str, str]:
    """The environment each shell's script sets for ``line``, the last word being completed."""
    if shell == "bash":
        return {"COMP_WORDS": line, "COMP_CWORD": str(len(line.split(" ")) - 1)}
    if shell == "fish":
        return {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": fish_action}
    return {"_TYPER_COMPLETE_ARGS": line}


def run(command: list[str], extra: dict[str, str], stdin: int = subprocess.DEVNULL) -> Answer:
    base = {k: v for k, v in env().items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")}
    result = subprocess.run(
        command,
        env={**base, "PYTHONPROFILEIMPORTTIME": "1", **extra},
        stdin=stdin,
        capture_output=True,
        timeout=60 * FACTOR,
        check=False,
    )
    timings = re.compile(rb"^import time:.*\n", re.M)
    modules = re.findall(rb"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", result.stderr, re.M)
    return Answer(
        result.returncode,
        result.stdout,
        timings.sub(b"", result.stderr),
        frozenset(m.decode() for m in modules),
    )


def both(
    shell: str, extra: dict[str, str], stdin: int = subprocess.DEVNULL
) -> tuple[Answer, Answer]:
    """(the console script's answer, Typer's own), to the same request."""
    extra = {"_CHATCTL_COMPLETE": f"complete_{shell}", **extra}
    fast = run(chatctl_command(), extra, stdin)
    typer = run([sys.executable, "-c", TYPER_ITSELF], extra, stdin)
    return fast, typer


def _seed(line: str) -> str:
    return str(sum(line.encode()) % 4)  # a spread of hash seeds, the same for both runs


def answered(shell: str, line: str) -> tuple[Answer, Answer]:
    return both(shell, {**request(shell, line), **WIDE, "PYTHONHASHSEED": _seed(line)})


def assert_same(fast: Answer, typer: Answer) -> None:
    assert (fast.code, fast.stdout, fast.stderr) == (typer.code, typer.stdout, typer.stderr)


def loaded_typer(answer: Answer) -> bool:
    assert "chatctl.cli" in answer.modules, "the import listing is not what it seems"
    return bool({m.split(".")[0] for m in answer.modules} & {"typer", "rich", "click"})


@pytest.mark.parametrize(
    ("shell", "line"),
    [("bash", line) for line in FAST] + [(s, line) for s in ("zsh", "fish") for line in SHELL_FAST],
)
def test_the_table_answers_as_typer_does(shell: str, line: str) -> None:
    fast, typer = answered(shell, line)
    assert_same(fast, typer)
    assert not loaded_typer(fast), f"{shell} {line!r} was left to Typer"


@pytest.mark.parametrize(
    ("shell", "line"), [("bash", line) for line in TYPER] + [("zsh", TYPER[0]), ("fish", TYPER[3])]
)
def test_what_the_table_cannot_follow_is_left_to_typer(shell: str, line: str) -> None:
    fast, typer = answered(shell, line)
    assert_same(fast, typer)
    assert loaded_typer(fast)


@pytest.mark.parametrize("seed", ["0", "1", "2", "3"])
def test_help_names_come_in_this_processs_set_order(seed: str) -> None:
    # Click lists -h and --help in the order of a set: it changes with the hash seed.
    fast, typer = both("bash", {**request("bash", "chatctl status -"), "PYTHONHASHSEED": seed})
    assert_same(fast, typer)
    assert not loaded_typer(fast)


@pytest.mark.parametrize("action", ["is-args", "get-args", ""])
@pytest.mark.parametrize("line", ["chatctl s", "chatctl join bob ", "chatctl serve --port "])
def test_fish_asks_whether_to_offer_files(action: str, line: str) -> None:
    fast, typer = both("fish", {**request("fish", line, action), **WIDE})
    assert_same(fast, typer)
    assert not loaded_typer(fast)


@pytest.mark.parametrize(
    ("shell", "line", "width", "table_answers"),
    [
        ("zsh", "chatctl s", {}, True),  # 80 columns: these short helps fit
        ("zsh", "chatctl join --", {}, False),  # --commands' help wraps at 80
        ("fish", "chatctl join --", {"COLUMNS": "60"}, False),
        ("zsh", "chatctl join --", {"TERMINAL_WIDTH": "120", "COLUMNS": "40"}, True),
        ("zsh", "chatctl join --", {"TERMINAL_WIDTH": "40", "COLUMNS": "250"}, False),
        ("zsh", "chatctl ", {"COLUMNS": "47"}, False),  # tail's help needs 48
        ("zsh", "chatctl ", {"COLUMNS": "48"}, True),
        ("zsh", "chatctl ", {"COLUMNS": "250", "TERM": "dumb"}, False),
        ("bash", "chatctl join --", {"COLUMNS": "10"}, True),  # bash shows no help
    ],
)
def test_a_help_rich_would_wrap_is_left_to_typer(
    shell: str, line: str, width: dict[str, str], table_answers: bool
) -> None:
    fast, typer = both(shell, {**request(shell, line), **width})
    assert_same(fast, typer)
    assert loaded_typer(fast) is not table_answers


@pytest.mark.parametrize(("columns", "table_answers"), [(40, False), (120, True)])
def test_the_width_of_the_terminal_on_stdin(columns: int, table_answers: bool) -> None:
    """zsh runs the command with stdout piped: Rich measures the terminal on stdin."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        fast, typer = both("zsh", request("zsh", "chatctl "), stdin=child)
    finally:
        os.close(child)
        os.close(main)
    assert_same(fast, typer)
    assert fast.stdout.startswith(b'_arguments \'*: :(("serve"')
    assert loaded_typer(fast) is not table_answers


def test_source_scripts_are_left_to_typer() -> None:
    fast, typer = both("bash", {"_CHATCTL_COMPLETE": "source_bash"})
    assert_same(fast, typer)
    assert b"complete -o default -F _chatctl_completion chatctl" in fast.stdout


@pytest.mark.parametrize(
    "line",
    [
        "",
        "chatctl  serve\t--port\r\n5",
        "chatctl 'serve' --ho",
        'chatctl "join" "b o',
        "chatctl join b\\ o",
        "chatctl join \\",
        "chatctl join 'unclosed",
        "chatctl join a\x0bb",
        "chatctl join a\u00a0b c\u2028d",
        "chatctl # not a comment",
    ],
)
def test_words_are_split_as_click_splits_them(line: str) -> None:
    from typer._click.shell_completion import split_arg_string

    assert split(line) == split_arg_string(line)


@given(st.text(alphabet=st.sampled_from(list("ab-= '\"\\\t\r\n\x0b\x85\u3000#")), max_size=30))
def test_any_line_is_split_as_click_splits_it(line: str) -> None:
    from typer._click.shell_completion import split_arg_string

    assert split(line) == split_arg_string(line)


@pytest.mark.parametrize(
    ("installed", "answers"),
    [
        ("typer-0.29.2.dist-info", True),
        ("typer-0.29.7.dist-info", True),
        ("typer-0.30.0.dist-info", False),
        ("typer-0.2.0.dist-info", False),
    ],
)
def test_the_table_answers_for_its_own_typer_series_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: str, answers: bool
) -> None:
    """A patch release of Typer keeps the fast path (it answered a stale-table CI run in
    2026-12 with Typer's slower one); another minor series leaves the request to Typer."""
    (tmp_path / "typer").mkdir()
    (tmp_path / installed).mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert _installed("typer", "typer-0.29.") is answers
