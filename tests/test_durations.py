"""Durations as people type them and as they are told (pure)."""

from __future__ import annotations

import pytest

from chatctl.durations import parse_duration, say_duration


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("30d", 2592000), ("1w", 604800)],
)
def test_parse(typed: str, seconds: float) -> None:
    assert parse_duration(typed) == seconds


@pytest.mark.parametrize("typed", ["", "10", "m", "0m", "-5m", "2y", "1.5.5h"])
def test_parse_refuses_what_is_not_a_duration(typed: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(typed)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (600, "10 minutes"),
        (599.4, "10 minutes"),  # what is left of a 10-minute mute, a moment later
        (3599.5, "1 hour"),  # not "60 minutes"
        (5400, "2 hours"),
        (86400 * 3, "3 days"),
        (86400 * 14, "2 weeks"),
    ],
)
def test_say(seconds: float, said: str) -> None:
    assert say_duration(seconds) == said
