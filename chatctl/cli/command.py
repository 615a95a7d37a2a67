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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer._click import Context
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

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


class Command(TyperCommand):
    """A chatctl command (``serve``, ``join``, ...)."""

    def get_params(self, ctx: Context) -> list[Any]:
        return _prepared(super().get_params(ctx))


class Group(TyperGroup):
    """``chatctl`` itself: the root options and the commands."""

    def get_params(self, ctx: Context) -> list[Any]:
        return _prepared(super().get_params(ctx))
