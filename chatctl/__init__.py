"""chatctl: terminal group chat over one asyncio core."""

__version__ = "0.1.0"
