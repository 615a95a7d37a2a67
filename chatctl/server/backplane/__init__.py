"""Several servers sharing rooms through Redis (``serve --backplane``): docs/design.md.

Light on purpose: redis-py is imported by ``link`` alone, when a backplane is used.
"""


class BackplaneError(Exception):
    """The backplane cannot be used (at start: one clear line, exit 9)."""
