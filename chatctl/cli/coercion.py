"""Typer's coercion of a parameter: the plain cases without pydantic, the rest as Typer does.

Typer 0.29 coerces every parameter through a pydantic ``TypeAdapter`` that it builds
on first use, even for a value of None, which it hands back untouched. Importing
pydantic and building the adapters cost ~0.3 s of CPU, more than all the rest of a
``chatctl status`` or a Tab completion. A plain text, a plain decimal number inside its
bounds, a switch, one of a command's choices or a path with no checks on it is coerced
here to what Typer's adapter would make of it; anything else (a bad value included, so
that its error is Typer's own) goes to the adapter, built then. Private Typer API, so
``chatctl.cli.command`` does without this module if it cannot import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path
from typer._typing import is_literal_type, literal_values

#: Numbers as their shortest plain spelling: the forms on which int()/float() and
#: pydantic's lax parsing cannot disagree (no "+", "_", spaces, leading zeros or "1e3").
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")

_SLOW = object()  # "ask Typer's adapter"


def _number(kind: type[Any], value: Any, info: Any) -> Any:
    if info.clamp:
        return _SLOW
    default = type(value) is kind or (kind is float and type(value) is int)
    spelled = isinstance(value, str) and (_INT if kind is int else _FLOAT).fullmatch(value)
    if not (default or spelled):
        return _SLOW
    number = kind(value)
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        return _SLOW
    return number


def _plain(descriptor: TypeDescriptor, value: Any, param: Any, ctx: Any) -> Any:
    """What Typer's adapter makes of ``value``, or ``_SLOW`` where that is not certain."""
    kind, info = descriptor.annotation, descriptor.parameter_info
    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return _SLOW
    if kind is str:
        return value if isinstance(value, str) else _SLOW
    if kind == list[str]:  # a repeatable option: a tuple (or list) of texts
        plain = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return list(value) if plain else _SLOW
    if kind is bool:
        return value if isinstance(value, bool) else _SLOW
    if kind is int or kind is float:
        return _number(kind, value, info)
    if is_literal_type(kind) or (isinstance(kind, type) and issubclass(kind, Enum)):
        choices = literal_values(kind) if is_literal_type(kind) else list(kind)
        try:
            return coerce_cli_choice(
                value, choices=choices, case_sensitive=info.case_sensitive, ctx=ctx
            )
        except Exception:  # the adapter says what was wrong
            return _SLOW
    if kind is Path and isinstance(value, str) and value and info.path_type is None:
        # Typer's own checks (exists, readable, ...), given a Path already: no pydantic
        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    return _SLOW


@dataclass(frozen=True)
class _Deferred(RuntimeParam):
    """Stands in for Typer's own: ``coerce`` returns None for None without calling us."""

    descriptor: TypeDescriptor
    #: The real one, once built (a list: the dataclass is frozen, as Typer's is).
    built: list[RuntimeParam] = field(default_factory=list)

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if not self.built:
            plain = _plain(self.descriptor, value, param, ctx)
            if plain is not _SLOW:
                return plain
            self.built.append(build_runtime_param(self.descriptor))
        return self.built[0]._coerce_value(value, param=param, ctx=ctx)


def defer(param: Any) -> None:
    """Have ``param`` coerce plain values itself and build Typer's coercion for the rest.

    Typer's own is built at the first value, None included.
    """
    if getattr(param, "_runtime_param", False) is not None:
        return  # built already, or not a parameter of the Typer this was written for
    descriptor: TypeDescriptor = param.type_descriptor
    param._runtime_param = _Deferred(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        descriptor=descriptor,
    )
