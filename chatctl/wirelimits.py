"""The protocol's default size limits, as bare numbers.

A module of its own, importing nothing: ``chatctl.server.config`` takes its defaults
from here, and ``chatctl serve --help`` or a Tab of shell completion read those
without loading the protocol (msgspec and every frame). ``chatctl.protocol``
re-exports them.
"""

#: Longest frame (one JSON line, newline excluded) a peer may send.
MAX_FRAME_BYTES = 32 * 1024
#: Longest message text, counted in UTF-8 bytes and in lines.
MAX_TEXT_BYTES = 4096
MAX_TEXT_LINES = 100
#: Most past messages a client may ask to be replayed per room, on ``hello`` or ``join``.
MAX_HISTORY = 500
#: What the interactive ``chatctl join`` asks for by default (a piped one asks for none):
#: a client's choice, not a limit, here so ``join --help`` reads it without the client.
INTERACTIVE_HISTORY = 50
#: Most results one ``search`` may ask for.
MAX_SEARCH = 100
#: Longest search, in bytes of UTF-8: a few words, not a message.
MAX_SEARCH_BYTES = 200
