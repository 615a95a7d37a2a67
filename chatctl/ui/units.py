"""Quantities for people, one way everywhere: ``chatctl status`` and ``chatctl bench``
show a byte count alike."""

from __future__ import annotations


def size(n: float) -> str:
    """A byte count: ``512 B``, ``2.0 KiB``, ``3.4 MiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"
