"""Shell completion answered from a table, before Typer is imported.

Each Tab starts ``chatctl`` anew, and importing Typer alone takes longer than a Tab
should. ``completion_data`` is the table: made from the Typer app by
``scripts/gen_completions.py`` (a test fails when it is stale), every line in it
formatted by Typer's own completion classes, so the app stays the one source of truth.

``answer`` takes the steps Typer's ``BashComplete``/``ZshComplete``/``FishComplete``
and Click's ``shell_completion`` take, for the command lines it can follow: the root,
or a command followed by its own options, their values and its arguments. Anything
else returns None and Typer answers: ``source_*``, an option before the command, an
unknown option, ``--``, a Typer or Rich other than the table was made with, a help
text Rich would wrap at this width. Tests put both to the same requests and compare
the bytes. This module imports nothing but ``os`` and ``sys`` (``shlex`` for quotes).
"""

from __future__ import annotations

import os
import sys

from chatctl.cli import completion_data as table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypedDict

    #: A candidate: its value (bash's line), zsh's line, the width zsh's help needs
    #: unwrapped (0: no help), fish's line, the width fish's help needs.
    Item = tuple[str, str, int, str, int]

    class Values(TypedDict):
        """What an option's value or an argument completes to: these choices."""

        choices: list[Item]
        case_sensitive: bool

    class Option(TypedDict):
        """An option: what parsing it needs, and the items naming it."""

        name: str
        #: Its names other than secondary ones (``--no-x``): a value follows these.
        opts: list[str]
        #: Every name it is given by on the command line.
        names: list[str]
        takes_value: bool
        multiple: bool
        #: The help option: Click orders its names as a set of ``help_names`` iterates.
        is_help: bool
        #: Its names as completion offers them (none if hidden).
        items: list[Item]
        #: None: its values complete some way the table does not hold.
        values: Values | None

    class Node(TypedDict):
        """The root, or one command."""

        commands: list[Item]
        #: The help option's names, as the context settings list them.
        help_names: list[str]
        options: list[Option]
        arguments: list[Values | None]


#: The shells a completion script asks for, as in ``complete_bash``.
SHELLS = ("bash", "zsh", "fish")


def answer(environ: Mapping[str, str] = os.environ) -> int | None:
    """Answer the completion request in ``environ`` on stdout: the exit status.

    None, having printed nothing, when Typer must answer it.
    """
    try:
        found = _answer(environ)
    except Exception:  # a mistake here must not cost the user the answer: Typer gives it
        return None
    if found is None:
        return None
    code, out = found
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    return code


def _answer(environ: Mapping[str, str]) -> tuple[int, str] | None:
    """(exit status, what to print) for the request, as Typer would have them."""
    action, _, shell = environ.get(table.COMPLETE_VAR, "").partition("_")
    if action != "complete" or shell not in SHELLS or os.name == "nt":
        return None
    if _program_name() != table.PROG or not _installed("typer", table.TYPER):
        return None
    request = _bash_request(environ) if shell == "bash" else _request(environ)
    if request is None:
        return None
    found = completions(*request)
    if found is None:
        return None
    if shell == "bash":
        text = "\n".join(item[0] for item in found)
    elif shell == "fish" and environ.get("_TYPER_COMPLETE_FISH_ACTION", "") == "is-args":
        return (0 if found else 1), ""  # fish offers files only when nothing else is
    else:
        lines = _shell_lines(shell, found, environ)
        if lines is None:
            return None
        text = _zsh_text(lines) if shell == "zsh" else _fish_text(lines, environ)
    out = text + "\n"
    if not out.isascii() or "\x1b" in out:  # click.echo would treat it its own way
        return None
    return 0, out


def _program_name() -> str | None:
    """The name Typer finds itself run as; None under ``python -m``, which it names otherwise."""
    main = sys.modules.get("__main__")
    if getattr(main, "__package__", None) not in (None, ""):
        return None
    return os.path.basename(sys.argv[0])


def _installed(package: str, series: str) -> bool:
    """Whether the ``package`` Python imports is of the version ``series`` the table was
    made from (its ``.dist-info`` folder's name starts with it)."""
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, package)):
            return any(
                name.startswith(series) and name.endswith(".dist-info")
                for name in os.listdir(entry)
            )
    return False


def split(line: str) -> list[str]:
    """Words as Click's ``split_arg_string`` makes them: ``str.split`` when that is the same."""
    if not any(c in "'\"\\" or (c.isspace() and c not in " \t\r\n") for c in line):
        return line.split()
    import shlex

    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        for token in lex:
            out.append(token)
    except ValueError:  # an open quote or a lone backslash: the partial word as it is
        out.append(lex.token)
    return out


def _bash_request(environ: Mapping[str, str]) -> tuple[list[str], str] | None:
    if "COMP_WORDS" not in environ or "COMP_CWORD" not in environ:
        return None
    try:
        cword = int(environ["COMP_CWORD"])
    except ValueError:
        return None
    cwords = split(environ["COMP_WORDS"])
    try:
        incomplete = cwords[cword]
    except IndexError:
        incomplete = ""
    return cwords[1:cword], incomplete


def _request(environ: Mapping[str, str]) -> tuple[list[str], str]:
    line = environ.get("_TYPER_COMPLETE_ARGS", "")
    args = split(line)[1:]
    if args and not line.endswith(" "):
        return args[:-1], args[-1]
    return args, ""


def completions(args: list[str], incomplete: str) -> list[Item] | None:
    """What Typer offers after ``args`` for ``incomplete``; None if the table cannot say."""
    given: set[str] = set()
    if not args:
        node, positionals = table.ROOT, 0
    else:
        command = table.COMMANDS.get(args[0])
        if command is None:
            return None
        parsed = _parse(command, args[1:])
        if parsed is None:
            return None
        node, (given, positionals) = command, parsed
    # From here on, Click's _resolve_incomplete.
    args = list(args)
    if incomplete == "=":
        incomplete = ""
    elif "=" in incomplete and incomplete.startswith("-"):
        name, _, incomplete = incomplete.partition("=")
        args.append(name)
    if "--" not in args and incomplete.startswith("-"):
        return _named(node, given, incomplete)
    if args and args[-1].startswith("-"):
        for option in node["options"]:
            if option["takes_value"] and args[-1] in option["opts"]:
                return matching(option["values"], incomplete)
    if positionals < len(node["arguments"]):
        return matching(node["arguments"][positionals], incomplete)
    return _named(node, given, incomplete)


def _parse(node: Node, tokens: list[str]) -> tuple[set[str], int] | None:
    """The options given, and how many arguments got a value, as Click's parser finds them.

    None for what is not followed here: ``--``, unknown options, short ones run together.
    """
    options = {name: option for option in node["options"] for name in option["names"]}
    given: set[str] = set()
    positionals = 0
    rest = list(tokens)
    while rest:
        word = rest.pop(0)
        if word == "--":
            return None
        if not (word.startswith("-") and len(word) > 1):
            positionals += 1
            continue
        name, equals, _ = word.partition("=")
        option = options.get(name)
        if option is None:
            return None
        if equals and not (name.startswith("--") and option["takes_value"]):
            return None
        if option["takes_value"] and not equals:
            if not rest:  # Click gives up parsing here, quietly: no argument got its value
                return given, 0
            rest.pop(0)  # the value, whatever it looks like
        given.add(option["name"])
    return given, min(positionals, len(node["arguments"]))


def _named(node: Node, given: set[str], incomplete: str) -> list[Item]:
    """The commands, then the options (not those given once already) ``incomplete`` starts."""
    found = [item for item in node["commands"] if item[0].startswith(incomplete)]
    if incomplete and not incomplete[0].isalnum():
        for option in node["options"]:
            if option["multiple"] or option["name"] not in given:
                items = option["items"]
                if option["is_help"]:
                    # In this process's order, as Typer's would have it (hash seeds differ).
                    order = list(set(node["help_names"]))
                    items = sorted(items, key=lambda item: order.index(item[0]))
                found += [item for item in items if item[0].startswith(incomplete)]
    return found


def matching(values: Values | None, incomplete: str) -> list[Item] | None:
    if values is None:
        return None
    if values["case_sensitive"]:
        return [item for item in values["choices"] if item[0].startswith(incomplete)]
    lowered = incomplete.lower()
    return [item for item in values["choices"] if item[0].lower().startswith(lowered)]


def _shell_lines(shell: str, found: list[Item], environ: Mapping[str, str]) -> list[str] | None:
    """zsh's or fish's lines; None if Rich would wrap a help text, as Typer has it do."""
    width = rich_width(environ)
    if width is None or not _installed("rich", table.RICH):
        return None
    if shell == "zsh":
        return None if any(item[2] > width for item in found) else [item[1] for item in found]
    return None if any(item[4] > width for item in found) else [item[3] for item in found]


def _zsh_text(lines: list[str]) -> str:
    if not lines:
        return "_files"
    joined = "\n".join(lines)
    return f"_arguments '*: :(({joined}))'"


def _fish_text(lines: list[str], environ: Mapping[str, str]) -> str:
    if environ.get("_TYPER_COMPLETE_FISH_ACTION", "") == "get-args" and lines:
        return "\n".join(lines)
    return ""


def rich_width(environ: Mapping[str, str]) -> int | None:
    """The width Typer's Rich console renders help at; None where it is not followed here.

    Typer reads TERMINAL_WIDTH; Rich then COLUMNS, else the terminal on stdin, stdout or
    stderr, else 80. A dumb terminal has rules of its own.
    """
    width: int | None = None
    fixed = environ.get("TERMINAL_WIDTH")
    if fixed:
        if not (fixed.isascii() and fixed.isdigit()):
            return None
        width = int(fixed)
    else:
        columns = environ.get("COLUMNS")
        if columns is not None and columns.isdigit():
            if not columns.isascii():
                return None
            width = int(columns)
    if environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return None
    if width is None:
        for fd in (0, 1, 2):
            try:
                width = os.get_terminal_size(fd).columns
            except (AttributeError, ValueError, OSError):
                continue
            break
        width = width or 80
    return width if width >= 1 else None
