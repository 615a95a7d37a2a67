"""Typer's coercion of a parameter, built only once a value needs it.

Typer 0.29 coerces every parameter through a pydantic ``TypeAdapter`` that it builds
on first use, even for a value of None, which it hands back untouched: ``--help``
and the completion options whenever they are not given. Importing pydantic costs
more than everything else a Tab completion or ``chatctl serve --help`` does. Private
Typer API, so ``chatctl.cli.command`` does without this module if it cannot import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param


@dataclass(frozen=True)
class _Deferred(RuntimeParam):
    """Stands in for Typer's own: ``coerce`` returns None for None without calling us."""

    descriptor: TypeDescriptor
    #: The real one, once built (a list: the dataclass is frozen, as Typer's is).
    built: list[RuntimeParam] = field(default_factory=list)

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if not self.built:
            self.built.append(build_runtime_param(self.descriptor))
        return self.built[0]._coerce_value(value, param=param, ctx=ctx)


def defer(param: Any) -> None:
    """Have ``param`` build its coercion at its first value other than None.

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
