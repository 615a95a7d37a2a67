"""The small helpers compare.py's report modules share: medians, numbers as the tables
show them, ratios, and a target's verdict."""

from __future__ import annotations

import statistics


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, kind: str = "n") -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "%":
        return f"{value:.0f} %"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "kib":
        return f"{value / 1024:.1f} KiB"
    for limit, suffix in ((1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**yes**" if ok else "**no**")
