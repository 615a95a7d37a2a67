"""Durations as people type them: ``90s``, ``15m``, ``2h``, ``30d``, ``1w``.

Light (no imports beyond ``re``): ``serve --keep`` and the one-shot commands'
``--since`` parse them while the command line is read.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError with a message for a person otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: a number and a unit, such as 90m, 12h, 30d")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be more than zero")
    return seconds


_SPOKEN = ((7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def say_duration(seconds: float) -> str:
    """``10 minutes``, ``1 hour``, ``2 days``: in the largest unit it has at least one of,
    rounded to a whole number of it (what a person is told: "muted for 10 minutes")."""
    for size, unit in _SPOKEN:  # noqa: B007  the last one is the fallback
        if seconds >= size * 0.98:  # 59 min 59 s left of an hour's ban: "1 hour"
            break
    count = max(1, round(seconds / size))
    return f"{count} {unit}" + ("" if count == 1 else "s")
