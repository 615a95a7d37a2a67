"""What the hub tells one IRC member, as IRC lines: numerics, its own joins, PMs, errors.

Pure. ``render`` reads the connection (its nick, capabilities, rooms) and may
update it (its own join, part and nick change come to it alone, so it always
knows its rooms and its name). A request's ``id`` (``names:#lobby``) says which
command asked, so an answer or an error becomes that command's numerics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatctl.irc import events
from chatctl.irc.events import SERVER_NAME, message_lines, source, stamp
from chatctl.irc.lines import middle
from chatctl.protocol import (
    MAX_HISTORY,
    AwayState,
    Error,
    ErrorCode,
    HistoryReply,
    Left,
    Message,
    NickChanged,
    Parted,
    Ping,
    Private,
    RoomsReply,
    RoomState,
    Shutdown,
    Welcome,
    WhoisReply,
    WhoReply,
    clean_line,
    name_key,
)

if TYPE_CHECKING:
    from chatctl.irc.connection import IrcConnection

#: IRC's error numerics for chatctl's codes; ``None``: the verb decides (see ``_error``).
NUMERICS: dict[str, int] = {
    ErrorCode.NO_SUCH_USER: 401,
    ErrorCode.INVALID_ROOM: 403,
    ErrorCode.TOO_MANY_ROOMS: 405,
    ErrorCode.INVALID_NAME: 432,
    ErrorCode.NAME_TAKEN: 433,
    ErrorCode.NAME_CLAIMED: 433,
    ErrorCode.EMPTY_MESSAGE: 412,
    ErrorCode.MESSAGE_TOO_LONG: 417,
    ErrorCode.MUTED: 404,
    ErrorCode.MODERATED: 404,
    ErrorCode.READ_ONLY: 404,
    ErrorCode.PRIVATE_UNSUPPORTED: 404,
    ErrorCode.NOT_OPERATOR: 482,
    ErrorCode.PROTECTED: 482,
    ErrorCode.BANNED: 474,
    ErrorCode.PASSWORD_REQUIRED: 464,
    ErrorCode.WRONG_PASSWORD: 464,
}
#: Errors after which the server closes the connection: IRC's ``ERROR`` says so.
_CLOSING = frozenset(
    {
        ErrorCode.TOO_MANY_ERRORS,
        ErrorCode.HANDSHAKE_TIMEOUT,
        ErrorCode.SERVER_FULL,
        ErrorCode.THROTTLED,
        ErrorCode.ACCESS_DENIED,
        ErrorCode.SLOW_CONSUMER,
    }
)
#: Names per RPL_NAMREPLY line: well within 512 bytes at 32 characters a name.
_NAMES_PER_LINE = 12
_PLAIN_STAMP = "[{}] "


def render(conn: IrcConnection, frame: object) -> list[str]:
    """The lines ``frame`` is for this connection (none: IRC has nothing for it)."""
    match frame:
        case Welcome():
            conn.renamed(frame.name)
            return _welcome(conn, frame)
        case RoomState():
            conn.entered(frame.room)
            out = [f":{source(conn.me())} JOIN {frame.room}"]
            if frame.topic:
                out.append(conn.numeric(332, frame.room, frame.topic))
            return out
        case Message(history=True):
            return _replayed(conn, frame)
        case Parted() if name_key(frame.name) == name_key(conn.me()):
            conn.left(frame.room)
            return events.lines(frame, conn.tags)
        case NickChanged() if name_key(frame.name) == name_key(conn.me()):
            conn.renamed(frame.new)
            return events.lines(frame, conn.tags)
        case Parted() | NickChanged() | Left() | Message():
            return events.lines(frame, conn.tags)
        case Private():
            return _private(conn, frame)
        case WhoReply():
            return _who(conn, frame)
        case WhoisReply():
            return _whois(conn, frame)
        case RoomsReply():
            return _rooms(conn, frame)
        case HistoryReply():
            return batched(conn, frame.room, frame.messages, always=True)
        case AwayState(text=None):
            return [conn.numeric(305, "You are no longer marked as being away")]
        case AwayState():
            return [conn.numeric(306, "You have been marked as being away")]
        case Error():
            return _error(conn, frame)
        case Ping():
            return [f"PING :{SERVER_NAME}"]
        case Shutdown(reason=reason):
            return [conn.closing(reason)]
    return []


def _welcome(conn: IrcConnection, welcome: Welcome) -> list[str]:
    version = conn.version
    return [
        conn.numeric(1, f"Welcome to the chatctl IRC door, {welcome.name}"),
        conn.numeric(2, f"Your host is {SERVER_NAME}, running chatctl {version}"),
        conn.numeric(3, "This server speaks the chatctl protocol and IRC"),
        conn.numeric(4, SERVER_NAME, version, "iw", "bmntov"),
        conn.numeric(
            5,
            "CHANTYPES=#",
            "PREFIX=(ov)@+",
            "CHANMODES=b,,,mnt",
            "CASEMAPPING=ascii",
            "NICKLEN=32",
            "TARGMAX=PRIVMSG:4,NOTICE:4",
            "CHANNELLEN=31",
            "NETWORK=chatctl",
            f"CHATHISTORY={MAX_HISTORY}",
            "MSGREFTYPES=msgid,timestamp",
            "are supported by this server",
        ),
        conn.numeric(422, "MOTD File is missing"),
    ]


def _history_lines(conn: IrcConnection, message: Message, batch: str | None) -> list[str]:
    """A past message's lines, in ``batch`` if it is one."""
    room = message.room or "#lobby"
    if conn.tags:
        return message_lines(message, room, tags=conn.tags, batch=batch)
    when = _PLAIN_STAMP.format(stamp(message.time)[:16].replace("T", " "))
    return message_lines(message, room, prefix=when, batch=batch)  # the time in the text


def _replayed(conn: IrcConnection, message: Message) -> list[str]:
    """A past message, replayed after a JOIN: held until the names list is out."""
    if conn.hold(message):
        return []
    return _history_lines(conn, message, None)


def _names(conn: IrcConnection, reply: WhoReply) -> list[str]:
    names = [("@" if m.op else "") + m.name for m in reply.users]
    out = [
        conn.numeric(353, "=", reply.room, " ".join(names[i : i + _NAMES_PER_LINE]))
        for i in range(0, len(names), _NAMES_PER_LINE)
    ]
    out.append(conn.numeric(366, reply.room, "End of /NAMES list"))
    return out


def _who(conn: IrcConnection, reply: WhoReply) -> list[str]:
    verb = _verb(reply.id)
    if verb == "join-names":
        held = conn.release(reply.room)
        if held is None:  # the join was refused: its error said so
            return []
        return _names(conn, reply) + batched(conn, reply.room, held)
    if verb == "names":
        return _names(conn, reply)
    out = [
        conn.numeric(
            352,
            reply.room,
            m.name,
            SERVER_NAME,
            SERVER_NAME,
            m.name,
            ("G" if m.away else "H") + ("@" if m.op else ""),
            f"0 {m.name}",
        )
        for m in reply.users
    ]
    out.append(conn.numeric(315, reply.room, "End of /WHO list"))
    return out


def batched(
    conn: IrcConnection, room: str, messages: list[Message], always: bool = False
) -> list[str]:
    """Past messages: in one ``chathistory`` batch for clients that take batches (an empty
    one, ``always``, to answer CHATHISTORY)."""
    if not messages and not always:
        return []
    if "batch" not in conn.caps:
        return [line for m in messages for line in _history_lines(conn, m, None)]
    ref = conn.next_batch()
    return [
        f":{SERVER_NAME} BATCH +{ref} chathistory {room}",
        *(line for m in messages for line in _history_lines(conn, m, ref)),
        f":{SERVER_NAME} BATCH -{ref}",
    ]


def _whois(conn: IrcConnection, reply: WhoisReply) -> list[str]:
    name = reply.name
    if _verb(reply.id) == "who":
        flags = "G" if reply.away else "H"
        room = reply.rooms[0] if reply.rooms else "*"
        return [
            conn.numeric(352, room, name, SERVER_NAME, SERVER_NAME, name, flags, f"0 {name}"),
            conn.numeric(315, name, "End of /WHO list"),
        ]
    out = [conn.numeric(311, name, name, SERVER_NAME, "*", name)]
    for i in range(0, len(reply.rooms), _NAMES_PER_LINE):  # 12 rooms of 31: within 512
        out.append(conn.numeric(319, name, " ".join(reply.rooms[i : i + _NAMES_PER_LINE])))
    out.append(conn.numeric(312, name, SERVER_NAME, "chatctl"))
    if reply.away:
        out.append(conn.numeric(301, name, reply.away))
    out.append(conn.numeric(318, name, "End of /WHOIS list"))
    return out


def _rooms(conn: IrcConnection, reply: RoomsReply) -> list[str]:
    verb, target = _verb(reply.id), _target(reply.id)
    if verb in ("mode", "topic"):
        found = [r for r in reply.rooms if r.name == target.lower()]
        if not found:
            return [conn.numeric(403, target, "No such channel")]
        room = found[0]
        if verb == "mode":
            return [conn.numeric(324, room.name, "+nt" + ("m" if room.moderated else ""))]
        if room.topic:
            return [conn.numeric(332, room.name, room.topic)]
        return [conn.numeric(331, room.name, "No topic is set")]
    out = [conn.numeric(321, "Channel", "Users  Name")]
    out += [conn.numeric(322, r.name, str(r.members), r.topic or "") for r in reply.rooms]
    out.append(conn.numeric(323, "End of /LIST"))
    return out


def _private(conn: IrcConnection, private: Private) -> list[str]:
    mine = name_key(private.name) == name_key(conn.me())
    if not mine:
        return message_lines(_as_message(private), conn.me(), tags=conn.tags)
    out = []
    if private.away is not None:
        out.append(conn.numeric(301, private.to, private.away))
    if conn.echo:
        out += message_lines(_as_message(private), private.to, tags=conn.tags)
    return out


def _as_message(private: Private) -> Message:
    return Message(0, private.time, private.name, private.text, None, private.id, private.action)


def _error(conn: IrcConnection, error: Error) -> list[str]:
    verb, target = _verb(error.id), _target(error.id)
    if error.room is not None and error.id is None:
        verb, target = "privmsg", error.room
    if verb in ("notice", "join-names"):
        return []  # IRC never answers a NOTICE; the join's own error is enough
    if verb == "chathistory":
        text = clean_line(error.message)
        return [f":{SERVER_NAME} FAIL CHATHISTORY INVALID_TARGET {middle(target)} :{text}"]
    if error.code in _CLOSING:
        return [conn.closing(error.message)]
    if error.code == ErrorCode.ALREADY_IN_ROOM:
        return []  # as IRC servers do: joining a channel you are in does nothing
    target, _, name = target.partition(",")  # MODE and KICK: "#room,nick"
    if name and error.code == ErrorCode.NO_SUCH_USER:
        return [conn.numeric(441, clean_line(name), clean_line(target), error.message)]
    code = NUMERICS.get(error.code)
    if error.code == ErrorCode.NOT_IN_ROOM:
        code = 404 if verb == "privmsg" else 442
    if code is None:
        return [f":{SERVER_NAME} NOTICE {conn.me()} :{clean_line(error.message)}"]
    if code == 464:
        return [conn.numeric(464, error.message)]
    if code == 417 or code == 412:
        return [conn.numeric(code, error.message)]
    return [conn.numeric(code, clean_line(target) or "*", error.message)]


def request_id(verb: str, target: str) -> str:
    """The ``id`` of a request: which command asked, about what, within the protocol's
    64 printable bytes (``names:#lobby``)."""
    return f"{verb}:{target}"[:64].replace(" ", "_")


def _verb(id: str | None) -> str:
    return (id or "").partition(":")[0]


def _target(id: str | None) -> str:
    return (id or "").partition(":")[2]
