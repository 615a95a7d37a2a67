"""chatctl: terminal group chat over one asyncio core."""

__version__ = "0.1.0"


def version_line() -> str:
    """What ``chatctl --version`` prints (with or without Typer loaded)."""
    return f"chatctl {__version__}"
