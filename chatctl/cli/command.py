"""The Click classes behind chatctl's Typer app: help that shows what a user types, fast.

Typer 0.29 shows a type after every option and argument (``--json <bool>``,
``NAME <str>``) and a required argument as ``{name}`` in the usage line. Here an
option shows its ``metavar`` (declared with each option; a switch shows nothing, as
it takes no value), and an argument shows its metavar alone, or its choices.

Every parameter also gets its coercion deferred (``chatctl.cli.coercion``: pydantic
is loaded only once a value needs it).

Both hooks sit in ``get_params``, which Typer calls for parsing, help, usage and
completion alike, and both leave a parameter as it was when Typer's internals are not
the ones expected: help would then look as Typer makes it, and start-up be slower.

Help is Click's plain text (the app sets ``rich_markup_mode=None``: Typer's Rich help
imports Markdown and pygments, most of what ``--help`` cost). Click's formatter puts
every option under one heading; ``format_options`` here keeps the panels the options
name (``rich_help_panel``: Limits, Security) as sections of their own, in the order
Rich showed them: Arguments, Options, then each panel as first named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer._click import Context, HelpFormatter, echo
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from chatctl.exitcodes import ExitCode

_defer: Callable[[Any], None] | None
try:
    from chatctl.cli.coercion import defer as _defer
except ImportError:  # a Typer whose private coercion API differs: slower, same behaviour
    _defer = None


class _ReadableArgument(TyperArgument):
    """An argument as a user types it: ``NAME`` or ``[NAME]``, no ``<type>`` column."""

    def display_type_rich(self, ctx: Context) -> str | None:
        choices = self.type_descriptor.choices
        return "|".join(str(choice) for choice in choices) if choices else None

    def get_usage_pieces(self, ctx: Context) -> list[str]:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return [name if self.required else f"[{name}]"]


def _readable(param: Any) -> None:
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""  # a switch: nothing to type after it
    elif type(param) is TyperArgument and hasattr(param, "type_descriptor"):
        param.__class__ = _ReadableArgument  # same state, two methods differ


def _prepared(params: list[Any]) -> list[Any]:
    for param in params:
        _readable(param)
        if _defer is not None:
            _defer(param)
    return params


def _format_sections(command: Command | Group, ctx: Context, formatter: HelpFormatter) -> None:
    """One section a panel, Arguments and Options first; a panel with no rows is left out."""
    sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        default = "Arguments" if param.param_type_name == "argument" else "Options"
        sections.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
    for title, rows in sections.items():
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


class Command(TyperCommand):
    """A chatctl command (``serve``, ``join``, ...)."""

    def get_params(self, ctx: Context) -> list[Any]:
        return _prepared(super().get_params(ctx))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        _format_sections(self, ctx, formatter)


class Group(TyperGroup):
    """``chatctl`` itself: the root options and the commands."""

    def get_params(self, ctx: Context) -> list[Any]:
        return _prepared(super().get_params(ctx))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        _format_sections(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """Each command's first paragraph, as Rich showed it (Click's stops at a full stop)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                text = command.short_help or (command.help or "").split("\n\n")[0]
                rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # Bare ``chatctl``: the help on stdout and exit 2, as with Rich help; Click's plain
        # NoArgsIsHelpError would print it on stderr.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            echo(ctx.get_help(), color=ctx.color)
            ctx.exit(ExitCode.USAGE)
        return super().parse_args(ctx, args)
