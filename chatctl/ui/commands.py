"""Running a slash command against the client, and what the user is told locally.

Parsing is ``chatctl.commands`` (pure); this runs the result. Anything refused
here (no room to part, nobody to reply to) is said locally and nothing is sent.
"""

from __future__ import annotations

import time

from chatctl import commands as c
from chatctl import modcommands as mc
from chatctl.client import ChatClient
from chatctl.protocol import ProtocolError
from chatctl.ui.output import Show
from chatctl.ui.render import notice_line


class Conversation:
    """What a UI remembers around its client: the last private sender, for ``/reply``,
    and how many past messages ``/join`` asks for (None: none)."""

    def __init__(self, history: int | None = None) -> None:
        self.last_private: str | None = None
        self.history = history
        #: By room, the oldest ``seq`` shown: ``/history`` pages back from it.
        self.oldest: dict[str, int] = {}

    def shown(self, room: str, seq: int) -> None:
        if seq < self.oldest.get(room, seq + 1):
            self.oldest[room] = seq


async def run(
    client: ChatClient | None, command: c.Command, conversation: Conversation, show: Show
) -> bool:
    """Do ``command``; True when it asks to leave. Offline (no client) only the local ones."""
    match command:
        case c.Quit():
            return True
        case c.Help():
            for line in c.help_lines():
                show(notice_line(time.time(), line))
            return False
        case c.Mistake(message=message):
            _say(show, message, "bold red")
            return False
    if client is None:
        _say(show, "offline: not sent", "red")
        return False
    try:
        return await _run(client, command, conversation, show)
    except ProtocolError as exc:  # checked locally before sending: too long, bad name...
        show(notice_line(time.time(), f"not sent: {exc.message}", "bold red"))
        return False


async def _run(
    client: ChatClient, command: c.Command, conversation: Conversation, show: Show
) -> bool:
    rooms = client.rooms
    match command:
        case c.Text(text=text):
            if text.strip():
                await client.say(text)
        case c.Action(text=text):
            await client.say(text, action=True)
        case c.Private(to=to, text=text):
            await client.msg(to, text)
        case c.Reply(text=text):
            if conversation.last_private is None:
                _say(show, "nobody has sent you a private message yet: /msg NAME TEXT")
            else:
                await client.msg(conversation.last_private, text)
        case c.JoinRoom(room=room):
            if room in rooms:
                rooms.switch(room)
                _say(show, f"you are in {room} already; typing into it now", "green")
            else:
                await client.join_room(room, conversation.history)
        case c.PartRoom(room=room):
            target = room or rooms.current
            if target is None or target not in rooms:
                _say(show, f"you are not in {target or 'any room'}")
            else:
                await client.part(target)
        case c.SwitchRoom(room=room):
            if room in rooms:
                rooms.switch(room)
                _say(show, f"typing into {room}", "green")
            else:
                _say(show, f"you are not in {room}: /join {room}")
        case c.ListRooms():
            await client.list_rooms()
        case c.Who(room=room):
            target = room or rooms.current
            if target is None:
                _say(show, "you are in no room: /who ROOM")
            else:
                await client.who(target)
        case c.Whois(name=name):
            await client.whois(name)
        case c.ChangeNick(name=name):
            await client.nick(name)
        case c.SetAway(text=text):
            await client.away(text)
        case c.ShowHistory(count=count, name=str() as name):
            await client.conversation(name, count)
        case c.Search(words=words):
            await client.search(words)
        case c.ShowHistory(count=count):
            if rooms.current is None:
                _say(show, "you are in no room: /join ROOM")
            else:
                await client.history(rooms.current, count, conversation.oldest.get(rooms.current))
        case c.ShowUnread():
            await client.unread()
        case mc.SetTopic() | mc.Moderate() | mc.RaiseHand() | mc.ShowHands() | mc.ShowBans():
            await _moderation(client, command, show)
    return False


async def _moderation(client: ChatClient, command: c.Command, show: Show) -> None:
    """The operators' commands (and ``/topic``, ``/hand``): in the room typed into."""
    room = client.rooms.current
    if room is None:
        return _say(show, "you are in no room: /join ROOM")
    match command:
        case mc.SetTopic(text=None, clear=False):
            topic = client.rooms.topic()
            _say(show, f"topic of {room}: {topic}" if topic else "no topic here")
        case mc.SetTopic(text=text):
            await client.set_topic(room, text)
        case mc.Moderate(do=do, name=name, reason=reason, seconds=seconds, server=server):
            await client.moderate(room, do, name, reason, seconds, server=server)
        case mc.RaiseHand(down=down):
            await client.hand(room, down=down)
        case mc.ShowHands():
            await client.hands(room)
        case mc.ShowBans():
            await client.bans(room)


def _say(show: Show, text: str, style: str = "yellow") -> None:
    show(notice_line(time.time(), text, style))
