"""Which line a server frame is shown as (``render_frame``), for the one who sees it.

The lines themselves are built by ``chatctl.ui.render``; this module decides, for each
frame, whether a person sees it and as what: their own join is not news, a kick's
``part`` was said by the kick itself, a replayed message is dimmed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatctl.durations import say_duration
from chatctl.protocol import (
    BANNED,
    AwayState,
    BanInfo,
    BansReply,
    Claim,
    Error,
    HandsReply,
    HandState,
    Joined,
    Left,
    Message,
    NickChanged,
    Parted,
    Private,
    RoomsReply,
    RoomState,
    ServerFrame,
    Shutdown,
    UnreadReply,
    WhoisReply,
    WhoReply,
    name_key,
)
from chatctl.ui.render import (
    ChatLine,
    mentions,
    message_line,
    moderation_line,
    notice_line,
    private_line,
    who_else,
)

_LEAVE_REASONS = {
    "quit": "left",
    "dropped": "left (connection dropped)",
    "slow_consumer": "was disconnected (too slow to keep up)",
    "ping_timeout": "was disconnected (stopped answering)",
    "frame_too_long": "was disconnected (sent an oversized frame)",
    "too_many_errors": "was disconnected (too many errors)",
    "replaced": "left (reconnected)",
    "banned": "was banned from the server",
    "kicked": "was kicked out",
}


def _ban(ban: BanInfo) -> str:
    """``ann (10.0.0.7), 9 minutes left, by teacher: rude``."""
    what = " ".join(
        filter(None, [ban.name, f"({ban.network})" if ban.name and ban.network else ban.network])
    )
    if ban.server:
        what += " from the server"
    left = f", {say_duration(ban.until - time.time())} left" if ban.until is not None else ""
    why = f": {ban.reason}" if ban.reason else ""
    return f"{what}{left}, by {ban.by}{why}"


@dataclass(frozen=True)
class View:
    """What rendering needs to know about us: our name, and whether to show rooms.

    ``dated_history``: replayed messages carry their date in the stamp (pipes).
    """

    me: str
    multi_room: bool = False
    dated_history: bool = False

    def room(self, room: str | None) -> str | None:
        return room if self.multi_room else None

    def mine(self, name: str) -> bool:
        return name_key(name) == name_key(self.me)


def render_frame(frame: ServerFrame, me: str | View) -> ChatLine | None:
    """The line for a frame, or None for frames a person need not see."""
    view = me if isinstance(me, View) else View(me)
    match frame:
        case Message(event=str(), time=ts, name=name, text=text, room=room, history=past):
            return moderation_line(
                ts, name, text, room=view.room(room), me=view.mine(frame.target or ""), history=past
            )
        case Message(time=ts, name=name, text=text, room=room, action=action, history=past):
            own = view.mine(name)
            mention = not own and not past and mentions(text, view.me)
            return message_line(
                ts,
                name,
                text,
                own=own,
                room=view.room(room),
                action=action,
                mention=mention,
                history=past,
                dated=past and view.dated_history,
            )
        case Private(time=ts, name=name, to=to, text=text, action=action, away=away, history=past):
            own = view.mine(name)
            line = private_line(
                ts, name, to, text, own=own, action=action, history=past, dated=past
            )
            if away is not None and view.mine(name):
                line.append(f"\n  ({to} is away: {away})", style="dim")
            return line
        case Joined(time=ts, name=name, room=room):
            if view.mine(name):
                return None  # the room's state said so already
            return notice_line(ts, f"{name} joined", room=view.room(room))
        case Parted(time=ts, name=name, room=room, reason=str() as why):
            if not view.mine(name):  # the kick or ban itself was the line before
                return None
            if why == BANNED:
                return notice_line(ts, f"you are banned from {room}", "bold red")
            return notice_line(ts, f"you are out of {room}: /join {room} to go back", "yellow")
        case Parted(time=ts, name=name, room=room):
            if view.mine(name):
                return notice_line(ts, f"you left {room}")
            return notice_line(ts, f"{name} left {room}", room=view.room(room))
        case Left(time=ts, name=name, reason=reason, room=room):
            said = _LEAVE_REASONS.get(reason, f"left ({reason})")
            return notice_line(ts, f"{name} {said}", room=view.room(room))
        case NickChanged(time=ts, name=old, new=new, room=room):
            return notice_line(ts, f"{old} is now known as {new}", room=view.room(room))
        case RoomState(room=room, users=users, online=online, topic=topic):
            text = f"you are in {room}; online: {who_else(users, online, view.me)}."
            if topic:
                text += f" Topic: {topic}"
            return notice_line(time.time(), text, "green")
        case AwayState(text=text):
            said = f"you are away: {text}" if text else "you are back"
            return notice_line(time.time(), said)
        case RoomsReply(rooms=rooms):
            listed = ", ".join(
                f"{r.name} ({r.members})" + (f" {r.topic}" if r.topic else "") for r in rooms
            )
            return notice_line(time.time(), f"rooms: {listed or 'none'}")
        case WhoReply(room=room, users=users):
            names = [
                ("@" if u.op else "")
                + u.name
                + (f" (away: {u.away})" if u.away else "")
                + (f" on {u.server}" if u.server else "")  # another server of the cluster
                for u in users
            ]
            return notice_line(time.time(), f"in {room}: {', '.join(names) or 'nobody'}")
        case WhoisReply(name=name, rooms=rooms, away=away, server=server):
            where = ", ".join(rooms) if rooms else "no room"
            said = f"{name} is online" + (f" on {server}" if server else "") + f", in {where}"
            said += f"; away: {away}" if away else ""
            return notice_line(time.time(), said)
        case HandState(room=room, name=name, position=position, down=down):
            if view.mine(name):
                said = "your hand is down" if down else f"your hand is up (number {position})"
                return notice_line(time.time(), f"{said} in {room}", "green")
            said = "lowered their hand" if down else f"raised a hand (number {position})"
            return notice_line(time.time(), f"{name} {said}", "bold yellow", view.room(room))
        case HandsReply(room=room, names=names):
            listed = ", ".join(f"{i}. {n}" for i, n in enumerate(names, 1))
            return notice_line(time.time(), f"hands up in {room}: {listed or 'none'}")
        case BansReply(room=room, bans=bans):
            listed = "; ".join(_ban(ban) for ban in bans)
            return notice_line(time.time(), f"bans in {room}: {listed or 'none'}")
        case UnreadReply(rooms=counts):
            listed = ", ".join(f"{room} {n}" for room, n in counts.items())
            return notice_line(time.time(), f"unread: {listed}" if listed else "nothing unread")
        case Claim():
            return None  # the name just keeps working; README: "Names that stay yours"
        case Shutdown():
            return notice_line(time.time(), "the server is shutting down", "yellow")
        case Error(code=code, message=message):
            return notice_line(time.time(), f"error: {message} ({code})", "bold red")
    return None
