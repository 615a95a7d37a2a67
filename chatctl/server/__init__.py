"""The chat server: asyncio, no terminal code.

Import what you need from its modules (``chatctl.server.listener.ChatServer``,
``chatctl.server.config.ServerConfig``): this package file imports nothing, so
the light ones (config, events) load without asyncio or ssl.
"""
