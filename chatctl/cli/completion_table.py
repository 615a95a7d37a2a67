"""The table ``quickcomplete`` answers from, read off the Typer app as ``completion_data.py``.

``scripts/gen_completions.py`` writes it; nothing imports this module when ``chatctl``
runs (it loads Typer, Rich and the whole app). Each candidate is one Typer itself offers
for the widest requests (every command for "", every option for "-", every choice for
""), its zsh and fish lines formatted by Typer's own classes: the table copies Typer's
answers, and ``quickcomplete`` only narrows them, as Click does. A command the table
cannot follow (a custom completion function, a file value, a callback, an option taking
several values) is left out, and Typer answers for it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typer import rich_utils
from typer._click.core import Context
from typer._click.shell_completion import CompletionItem, ShellComplete
from typer._completion_classes import FishComplete, ZshComplete
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.main import get_command

from chatctl.cli.app import app
from chatctl.cli.quickcomplete import matching

if TYPE_CHECKING:
    from chatctl.cli.quickcomplete import Item, Node, Option, Values

PROG = "chatctl"
COMPLETE_VAR = "_CHATCTL_COMPLETE"
#: Wider than any help text: the lines as Typer prints them when Rich wraps nothing.
WIDE = 10_000
LINE_LENGTH = 100  # ruff's, so that the written file is formatted already


class Unsupported(Exception):
    """Something of a command the table cannot follow: Typer answers for that command."""


@contextmanager
def _rich_width(width: int) -> Iterator[None]:
    """Typer's Rich console at ``width`` (and a height: else a dumb terminal is 80 wide)."""
    saved = rich_utils.MAX_WIDTH, os.environ.get("LINES")
    rich_utils.MAX_WIDTH = width
    os.environ["LINES"] = "25"
    try:
        yield
    finally:
        rich_utils.MAX_WIDTH = saved[0]
        if saved[1] is None:
            del os.environ["LINES"]
        else:
            os.environ["LINES"] = saved[1]


class _Lines:
    """A candidate as each shell's line, with the width its help needs to stay on one line."""

    def __init__(self, cli: TyperGroup) -> None:
        self.zsh = ZshComplete(cli, {}, PROG, COMPLETE_VAR)
        self.fish = FishComplete(cli, {}, PROG, COMPLETE_VAR)

    def item(self, candidate: CompletionItem) -> Item:
        if candidate.type != "plain":
            raise Unsupported(f"{candidate.value!r} completes as {candidate.type}")
        zsh, fish = self._at(self.zsh, candidate, WIDE), self._at(self.fish, candidate, WIDE)
        return (
            str(candidate.value),
            zsh,
            self._needs(self.zsh, candidate, zsh),
            fish,
            self._needs(self.fish, candidate, fish),
        )

    @staticmethod
    def _at(shell: ShellComplete, candidate: CompletionItem, width: int) -> str:
        with _rich_width(width):
            return shell.format_completion(candidate)

    def _needs(self, shell: ShellComplete, candidate: CompletionItem, wide: str) -> int:
        """The narrowest width at which Rich leaves the line as it is (0: no help, no Rich)."""
        if not candidate.help:
            return 0
        low, high = 1, 2 * len(wide)  # a character is at most two cells
        if self._at(shell, candidate, high) != wide:
            raise ValueError(f"{candidate.value!r}: Rich wraps its help at any width")
        while low < high:
            middle = (low + high) // 2
            if self._at(shell, candidate, middle) == wide:
                high = middle
            else:
                low = middle + 1
        return low


def _values(param: TyperArgument | TyperOption, ctx: Context, lines: _Lines) -> Values | None:
    """What the parameter's value completes to; None where Typer must say."""
    if getattr(param, "_custom_shell_complete", None) is not None:
        return None  # a function of its own: may depend on anything
    offered = param.shell_complete(ctx, "")
    if any(candidate.type != "plain" or candidate.help for candidate in offered):
        return None  # a file, say: the shell completes it, with what was typed
    values: Values = {
        "choices": [lines.item(candidate) for candidate in offered],
        "case_sensitive": bool(param.type_descriptor.case_sensitive),
    }
    for probe in _probes([str(candidate.value) for candidate in offered]):
        wanted = [str(candidate.value) for candidate in param.shell_complete(ctx, probe)]
        if [item[0] for item in matching(values, probe) or []] != wanted:
            return None  # Typer narrows them some other way
    return values


def _probes(choices: list[str]) -> Iterator[str]:
    yield from ("", "\x00", "z")
    for choice in choices:
        yield from (choice[:1], choice[:1].swapcase(), choice, choice.upper(), f"{choice}x")


def _is_simple_name(name: str) -> bool:
    """``--long`` or ``-s``: what Click's parser takes apart the way ``quickcomplete`` does."""
    long = name.startswith("--") and len(name) > 2
    return "=" not in name and (long or (len(name) == 2 and name[0] == "-" and name[1] != "-"))


def _option(
    param: TyperOption,
    named: dict[str, CompletionItem],
    ctx: Context,
    lines: _Lines,
    is_help: bool,
) -> Option:
    names = [*param.opts, *param.secondary_opts]
    if param.count or param.nargs != 1 or (param.secondary_opts and not param.is_flag):
        raise Unsupported(f"{names[0]} takes no value or more than one")
    if not all(_is_simple_name(name) for name in names):
        raise Unsupported(f"{names}: not --long or -s")
    if is_help:  # Click orders them as a set does, which differs from process to process
        names.sort(key=ctx.help_option_names.index)
    return {
        "name": str(param.name),
        "opts": [name for name in names if name in param.opts],
        "names": names,
        "takes_value": not param.is_flag,
        "multiple": bool(param.multiple),
        "is_help": is_help,
        "items": [lines.item(named[name]) for name in names if name in named],
        "values": None if param.is_flag else _values(param, ctx, lines),
    }


def _node(command: TyperCommand | TyperGroup, ctx: Context, lines: _Lines, root: bool) -> Node:
    """One command (or the root), as Typer completes it before anything is typed."""
    if ctx._opt_prefixes != {"-", "--"} or ctx.token_normalize_func is not None:
        raise Unsupported("options other than -s and --long")
    commands = _command_names(command, ctx)
    named = {str(c.value): c for c in command.shell_complete(ctx, "-")}
    help_option = command.get_help_option(ctx)
    options: list[Option] = []
    arguments: list[Values | None] = []
    offered: list[str] = []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument) and param.nargs == 1:
            arguments.append(_values(param, ctx, lines))
        elif isinstance(param, TyperOption):
            # The root's options are never parsed here (an option before a command: Typer
            # answers); a command's callbacks run while Click parses, so Typer must.
            if not root and param.callback is not None and param is not help_option:
                raise Unsupported(f"{param.opts[0]} has a callback")
            options.append(_option(param, named, ctx, lines, param is help_option))
            offered += [n for n in [*param.opts, *param.secondary_opts] if n in named]
        else:
            raise Unsupported(f"{param.name}: a parameter of another kind")
    if offered != [name for name in named if name not in commands]:
        raise ValueError(f"{ctx.info_name}: Typer offers its options in another order")
    return {
        "commands": [lines.item(c) for c in command.shell_complete(ctx, "")] if root else [],
        "help_names": list(ctx.help_option_names),
        "options": options,
        "arguments": arguments,
    }


def _command_names(command: TyperCommand | TyperGroup, ctx: Context) -> list[str]:
    return command.list_commands(ctx) if isinstance(command, TyperGroup) else []


def build() -> dict[str, Any]:
    """The table: the root, each command Typer need not answer for, and the libraries."""
    cli = get_command(app)
    if not isinstance(cli, TyperGroup):
        raise TypeError("the app is not a group of commands")
    lines = _Lines(cli)
    root_ctx = cli.make_context(PROG, [], resilient_parsing=True)
    commands: dict[str, Node] = {}
    for name in cli.list_commands(root_ctx):
        command = cli.get_command(root_ctx, name)
        if not isinstance(command, TyperCommand):
            continue  # a group in the group: Typer answers
        ctx = command.make_context(name, [], parent=root_ctx, resilient_parsing=True)
        try:
            commands[name] = _node(command, ctx, lines, root=False)
        except Unsupported:
            continue
    return {
        "PROG": PROG,
        "COMPLETE_VAR": COMPLETE_VAR,
        "TYPER": _series("typer", 2),
        "RICH": _series("rich", 1),
        "ROOT": _node(cli, root_ctx, lines, root=True),
        "COMMANDS": commands,
    }


def _series(package: str, parts: int) -> str:
    """The start of the folder name beside ``package`` that ``quickcomplete`` looks for: the
    first ``parts`` numbers of its version (Typer's minor series, as 0.x minors may change
    how it completes; Rich's major), so a patch release does not stale the table."""
    version = importlib.metadata.version(package)
    prefix = f"{package}-{'.'.join(version.split('.')[:parts])}."
    module = importlib.import_module(package)
    folder = Path(str(module.__file__)).parent.parent
    if not (folder / f"{package}-{version}.dist-info").is_dir():
        raise RuntimeError(f"no {package}-{version}.dist-info beside {module.__file__}")
    return prefix


HEADER = '''\
"""Shell completion's table, answered from without Typer (``chatctl.cli.quickcomplete``).

Generated from the Typer app by ``scripts/gen_completions.py`` (through
``chatctl.cli.completion_table``): do not edit; a test fails when it is stale.
"""

# ruff: noqa: E501

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chatctl.cli.quickcomplete import Node
'''

ANNOTATIONS = {"ROOT": "Node", "COMMANDS": "dict[str, Node]"}


def source(table: dict[str, Any]) -> str:
    """``completion_data.py``'s text, as ruff formats it."""
    out = [HEADER]
    for name, value in table.items():
        head = f"{name}: {ANNOTATIONS[name]} = " if name in ANNOTATIONS else f"{name} = "
        out.append(f"{head}{_literal(value, 0, len(head), 0)}\n")
    return "\n".join(out)


def _literal(value: object, indent: int, used: int, trail: int) -> str:
    """``value`` as Python, laid out as ruff lays it out.

    On one line if it fits in what the line has left (``used`` before it, ``trail``
    after); else one element a line, with a trailing comma, which ruff keeps so.
    """
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool | int) or value is None:
        return repr(value)
    if isinstance(value, tuple | list):
        pieces = [("", v) for v in value]
        brackets = "()" if isinstance(value, tuple) else "[]"
    elif isinstance(value, dict):
        pieces = [(f"{_string(k)}: ", v) for k, v in value.items()]
        brackets = "{}"
    else:
        raise TypeError(f"no literal for {type(value).__name__}")
    if not pieces:
        return brackets
    flat = ", ".join(f"{key}{_literal(v, 0, 0, 0)}" for key, v in pieces)
    if isinstance(value, tuple) and len(pieces) == 1:
        flat += ","
    if "\n" not in flat and used + len(flat) + 2 + trail <= LINE_LENGTH:
        return f"{brackets[0]}{flat}{brackets[1]}"
    inner = indent + 4
    body = "".join(
        f"{' ' * inner}{key}{_literal(v, inner, inner + len(key), 1)},\n" for key, v in pieces
    )
    return f"{brackets[0]}\n{body}{' ' * indent}{brackets[1]}"


def _string(text: str) -> str:
    """A string literal in the quotes ruff picks: double, unless single need fewer escapes."""
    quote = "'" if text.count("'") < text.count('"') else '"'
    body = []
    for char in text:
        if char in ("\\", quote):
            body.append(f"\\{char}")
        elif char == "\n":
            body.append("\\n")
        elif char == "\t":
            body.append("\\t")
        elif char.isprintable():
            body.append(char)
        else:
            body.append(repr(char)[1:-1])
    return f"{quote}{''.join(body)}{quote}"
