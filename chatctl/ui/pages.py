"""Pages of the past the user asked for: ``/history``, ``/history NAME``, ``/search``.

Each is a heading, then the messages; room history dimmed like a replay, search
results in full (they are what was looked for), each with its date and room.
"""

from __future__ import annotations

from chatctl.protocol import (
    HistoryReply,
    Message,
    Private,
    PrivateHistoryReply,
    SearchReply,
)
from chatctl.ui.commands import Conversation
from chatctl.ui.frames import View, render_frame
from chatctl.ui.output import Show
from chatctl.ui.render import (
    message_line,
    notice_line_now,
    private_line,
)
from chatctl.ui.units import count

Page = HistoryReply | PrivateHistoryReply | SearchReply


def show_page(page: Page, show: Show, conversation: Conversation, view: View) -> None:
    match page:
        case HistoryReply():
            _room_page(page, show, conversation, view)
        case PrivateHistoryReply():
            _conversation(page, show, view)
        case SearchReply():
            _found(page, show, view)


def _room_page(page: HistoryReply, show: Show, conversation: Conversation, view: View) -> None:
    """``/history``'s answer: a heading, then the older messages, dimmed."""
    if not page.messages:
        show(notice_line_now(f"nothing older in {page.room}", "dim"))
        return
    more = " (/history again for older ones)" if page.more else ""
    older = count(len(page.messages), "older message")
    show(notice_line_now(f"{older} of {page.room}{more}:", "dim"))
    for message in page.messages:
        line = render_frame(message, view)
        if line is not None:
            show(line)
        conversation.shown(page.room, message.seq)


def _conversation(page: PrivateHistoryReply, show: Show, view: View) -> None:
    """``/history NAME``'s answer: the last private messages with NAME, dimmed, dated."""
    if not page.messages:
        show(notice_line_now(f"no private messages with {page.name} kept", "dim"))
        return
    more = " (/history NAME N for more)" if page.more else ""
    many = count(len(page.messages), "private message")
    show(notice_line_now(f"{many} with {page.name}{more}:", "dim"))
    for message in page.messages:
        line = render_frame(message, view)
        if line is not None:
            show(line)


def _found(page: SearchReply, show: Show, view: View) -> None:
    """``/search``'s answer: the newest matches, oldest first, dated, each with its room."""
    found: list[Message | Private] = sorted([*page.messages, *page.private], key=lambda m: m.time)
    words = f"'{page.words}'"  # cleaned by the client core, like every frame
    if not found:
        show(notice_line_now(f"nothing found for {words}", "dim"))
        return
    more = "; older ones match too" if page.more else ""
    show(notice_line_now(f"{len(found)} found for {words}{more}:", "dim"))
    for item in found:
        own, action = view.mine(item.name), item.action
        if isinstance(item, Private):
            line = private_line(
                item.time, item.name, item.to, item.text, own=own, action=action, dated=True
            )
        else:
            line = message_line(
                item.time, item.name, item.text, own=own, room=item.room, action=action, dated=True
            )
        show(line)
