"""Quantities for people, one way everywhere: ``chatctl status`` and ``chatctl bench``
show a byte count alike, and nobody reads "1 messages"."""

from __future__ import annotations


def size(n: float) -> str:
    """A byte count: ``512 B``, ``2.0 KiB``, ``3.4 MiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def count(n: int, noun: str) -> str:
    """``1 message``, ``2 messages`` (nouns that take an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
