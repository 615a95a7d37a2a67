"""The input line: a prompt that names the room, Tab completion, and the keys.

* The prompt is ``[#room] name> `` (``[offline] name> `` while reconnecting), drawn
  afresh at each redraw, so a ``/join``, ``/switch`` or ``/nick`` shows at once.
* Tab completes ``/commands``, room names after the commands that take a room, and
  the names of the people in the current room everywhere else.
* Alt-1..9 type into the first..ninth room; Ctrl-C clears a half-typed line and
  leaves from an empty one, as shells and IRC clients do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from chatctl import commands

if TYPE_CHECKING:
    from chatctl.client import ChatClient

_WORD = re.compile(r"[^\s]+")


class Source(Protocol):
    """What the prompt shows and completes from: the current client, and our name."""

    name: str

    def current(self) -> ChatClient | None: ...


def prompt_text(source: Source) -> FormattedText:
    client = source.current()
    if client is None:
        return FormattedText([("fg:ansiyellow", "[offline] "), ("bold", source.name), ("", "> ")])
    parts: list[tuple[str, str]] = []
    if client.rooms.current is not None:
        parts.append(("bold fg:ansicyan", f"[{client.rooms.current}] "))
    parts += [("bold", client.name), ("", "> ")]
    return FormattedText(parts)


class ChatCompleter(Completer):
    """Commands, rooms and names, from what the client knows now."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        word = document.get_word_before_cursor(pattern=_WORD) if before[-1:].strip() else ""
        if before.startswith("/") and " " not in before:
            choices: Iterable[str] = (f"/{name}" for name in commands.NAMES)
        else:
            choices = self._arguments(before)
        lower = word.lower()
        for choice in sorted(set(choices), key=str.lower):
            if choice.lower().startswith(lower) and choice != word:
                yield Completion(choice, start_position=-len(word))

    def _arguments(self, before: str) -> list[str]:
        client = self._source.current()
        if client is None:
            return []
        if before.startswith("/"):
            spec = next((s for s in commands.COMMANDS if f"/{s.name}" == before.split()[0]), None)
            if spec is not None and spec.completes == "room" and before.count(" ") == 1:
                return client.rooms.names()
        me = client.name.lower()
        return [name for name in client.rooms.members() if name.lower() != me]


def _keys(source: Source) -> KeyBindings:
    keys = KeyBindings()

    @keys.add("c-c")
    def _clear_or_leave(event: KeyPressEvent) -> None:
        buffer = event.app.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    def switcher(index: int) -> Callable[[KeyPressEvent], None]:
        def switch(event: KeyPressEvent) -> None:
            client = source.current()
            if client is not None and index < len(client.rooms):
                client.rooms.switch(client.rooms.names()[index])
                event.app.invalidate()

        return switch

    for n in range(1, 10):
        keys.add("escape", str(n))(switcher(n - 1))
    return keys


def make_session(source: Source) -> PromptSession[str]:
    return PromptSession(
        lambda: prompt_text(source),
        erase_when_done=True,
        completer=ChatCompleter(source),
        complete_while_typing=False,
        key_bindings=_keys(source),
    )
