"""One IRC client's side of the door, without sockets: its lines become chatctl frames.

Pure (sans-I/O, like ``chatctl.protocol.state``): ``receive`` takes a parsed line
and returns what to do: chatctl frames for the hub, and IRC lines to send straight
back (CAP, PONG, numerics the door answers itself). ``render`` turns what the hub
sends this member into IRC lines (``chatctl.irc.replies``).

Registration is ``NICK`` + ``USER`` (and ``PASS``), after ``CAP END`` if the
client negotiated; then one chatctl ``hello`` is sent. Requests carry an ``id``
that says which IRC command asked and about what (``names:#lobby``), so the
answer, or the error, is rendered as that command's numerics.
"""

from __future__ import annotations

from chatctl.irc import history, modes, replies
from chatctl.irc.events import NOTICE_ID, SERVER_NAME, Tags
from chatctl.irc.lines import Line, middle, strip_formatting
from chatctl.irc.modes import Out
from chatctl.irc.replies import request_id
from chatctl.protocol import (
    Away,
    Bye,
    Hello,
    Join,
    Message,
    Msg,
    Nick,
    Part,
    Pong,
    RoomsRequest,
    Say,
    Topic,
    Whois,
    WhoRequest,
    clean_line,
    name_key,
)

#: What the door offers (CAP LS): one-to-one with what chatctl does.
CAPABILITIES = ("server-time", "message-tags", "echo-message", "batch", history.CAP)
#: Past messages a JOIN replays, as ``chatctl join`` shows by default.
REPLAY = 50


#: Targets of one PRIVMSG or NOTICE (ISUPPORT ``TARGMAX``): one line to many rooms or names
#: would otherwise be many messages for one line's pacing.
TARGMAX = 4


def message_targets(line: Line) -> list[str]:
    """A PRIVMSG's or NOTICE's targets, each once (IRC's case-insensitive), at most TARGMAX."""
    seen: dict[str, str] = {}
    if line.params:
        for target in line.params[0].split(","):
            if target and target.lower() not in seen:
                seen[target.lower()] = target
    return list(seen.values())[:TARGMAX]


class IrcConnection:
    """Registration, capabilities and the command table of one IRC connection."""

    def __init__(self, version: str, replay: int = REPLAY) -> None:
        self.version = version
        self.replay = replay
        self.nick: str | None = None
        self.user: str | None = None
        self.password: str | None = None
        self.caps: set[str] = set()
        #: Registration waits for ``CAP END`` once the client said ``CAP LS``.
        self._negotiating = False
        #: The hello is sent (the hub decides; a refused name resets this).
        self.registered = False
        #: Rooms this connection is in (its own joins and parts come to it alone).
        self.rooms: set[str] = set()
        #: Rooms just joined: their replayed history waits for the names list.
        self._joining: dict[str, list[Message]] = {}
        self._batches = 0
        self.user_modes: set[str] = set()

    @property
    def tags(self) -> Tags:
        if "message-tags" in self.caps:
            return Tags.ALL
        return Tags.TIME if "server-time" in self.caps else Tags.NONE

    @property
    def echo(self) -> bool:
        return "echo-message" in self.caps

    def me(self) -> str:
        """The nick to address numerics to (before registration: as sent, made inert)."""
        return middle(self.nick) if self.nick else "*"

    def next_batch(self) -> str:
        self._batches += 1
        return f"h{self._batches}"

    # what the hub tells us

    def set_user_mode(self, letter: str, on: bool) -> bool:
        """Whether ``letter`` changed (``MODE nick +i``)."""
        if (letter in self.user_modes) == on:
            return False
        self.user_modes ^= {letter}
        return True

    def renamed(self, new: str) -> None:
        self.nick = new

    def entered(self, room: str) -> None:
        self.rooms.add(room)
        self._joining[room] = []

    def left(self, room: str) -> None:
        self.rooms.discard(room)
        self._joining.pop(room, None)

    def hold(self, message: Message) -> bool:
        """Keep a replayed message until its room's names list is out; False if the
        room is not being joined (show it now)."""
        held = self._joining.get(message.room or "#lobby")
        if held is None:
            return False
        held.append(message)
        return True

    def release(self, room: str) -> list[Message] | None:
        """The messages held for ``room`` (None: it is not being joined)."""
        return self._joining.pop(room, None)

    def name_refused(self) -> None:
        """The hello's name was refused (taken, claimed, not a name): another NICK may come."""
        self.registered = False
        self.nick = None

    def render(self, frame: object) -> list[str]:
        return replies.render(self, frame)

    # what the client sends

    def receive(self, line: Line) -> list[Out]:
        command = line.command
        if command == "PRIVMSG" and self.registered:  # the hot path: a plain line to one room
            params = line.params
            if len(params) == 2 and params[0][:1] == "#" and "," not in params[0]:
                text = params[1]
                if text and text.isprintable():  # no formatting, no CTCP (\x01)
                    return [Say(text, params[0])]
            return self._privmsg(line)
        if command == "PING":
            return [f":{SERVER_NAME} PONG {SERVER_NAME} :{line.param(0) or ''}"]
        if command == "PONG":
            return [Pong()]
        if command == "QUIT":
            why = strip_formatting(line.param(0) or "Client Quit")
            return [self.closing(f"Quit: {why}"), Bye()]
        if command == "CAP":
            return self._cap(line)
        if not self.registered:
            return self._register(line)
        handler = _COMMANDS.get(command)
        if handler is None:
            return [self.numeric(421, command, "Unknown command")]
        return handler(self, line)

    def closing(self, why: str) -> str:
        """IRC's last line before the server closes the connection."""
        return f"ERROR :Closing Link: {self.me()} ({clean_line(why)})"

    def numeric(self, code: int, *params: str) -> str:
        """``:chatctl NNN nick params... :last``, each made inert (a client's own words
        may come back in them)."""
        *first, last = params or ("",)
        head = " ".join([f":{SERVER_NAME}", f"{code:03d}", self.me(), *map(middle, first)])
        return f"{head} :{clean_line(last)}"

    def needs(self, line: Line, count: int) -> list[Out] | None:
        if len(line.params) < count or not all(line.params[:count]):
            return [self.numeric(461, line.command, "Not enough parameters")]
        return None

    def _cap(self, line: Line) -> list[Out]:
        sub = (line.param(0) or "").upper()
        me = self.me()
        if sub == "LS":
            if not self.registered:
                self._negotiating = True
            return [f":{SERVER_NAME} CAP {me} LS :{' '.join(CAPABILITIES)}"]
        if sub == "LIST":
            return [f":{SERVER_NAME} CAP {me} LIST :{' '.join(sorted(self.caps))}"]
        if sub == "REQ":
            wanted = (line.param(1) or "").split()
            adding = {c for c in wanted if not c.startswith("-")}
            # After registration the room encoding is fixed: no new capabilities then.
            if self.registered or not adding <= set(CAPABILITIES):
                return [f":{SERVER_NAME} CAP {me} NAK :{' '.join(wanted)}"]
            if not self.registered:
                self._negotiating = True
            self.caps |= adding
            self.caps -= {c[1:] for c in wanted if c.startswith("-")}
            return [f":{SERVER_NAME} CAP {me} ACK :{' '.join(wanted)}"]
        if sub == "END":
            self._negotiating = False
            return self._maybe_hello()
        return [self.numeric(410, sub or "*", "Invalid CAP command")]

    def _register(self, line: Line) -> list[Out]:
        command = line.command
        if command == "PASS":
            missing = self.needs(line, 1)
            if missing:
                return missing
            self.password = line.params[0]
            return []
        if command == "NICK":
            missing = self.needs(line, 1)
            if missing:
                return [self.numeric(431, "No nickname given")]
            self.nick = line.params[0]
            return self._maybe_hello()
        if command == "USER":
            missing = self.needs(line, 4)
            if missing:
                return missing
            self.user = line.params[0]
            return self._maybe_hello()
        return [self.numeric(451, "You have not registered")]

    def _maybe_hello(self) -> list[Out]:
        if self.registered or self._negotiating or not self.nick or not self.user:
            return []
        self.registered = True
        return [Hello(2, self.nick, password=self.password, rooms=[])]

    # the commands of a registered client

    def _privmsg(self, line: Line) -> list[Out]:
        notice = line.command == "NOTICE"
        if not line.params:
            return [] if notice else [self.numeric(411, "No recipient given (PRIVMSG)")]
        if len(line.params) < 2 or not line.params[1]:
            return [] if notice else [self.numeric(412, "No text to send")]
        text, action = _ctcp(strip_formatting(line.params[1]))
        if text is None:  # CTCP other than ACTION: nothing chatctl has
            return []
        out: list[Out] = []
        targets = line.params[0].split(",")
        for target in message_targets(line):
            if target.startswith("#"):
                out.append(Say(text, target, NOTICE_ID if notice else None, action))
            else:
                out.append(
                    Msg(target, text, request_id("notice" if notice else "msg", target), action)
                )
        if len({t.lower() for t in targets if t}) > TARGMAX and not notice:
            out.append(
                self.numeric(407, line.params[0][:64], f"Too many targets (at most {TARGMAX})")
            )
        return out

    def _join(self, line: Line) -> list[Out]:
        missing = self.needs(line, 1)
        if missing:
            return missing
        if line.params[0] == "0":
            return [Part(room, f"part:{room}") for room in sorted(self.rooms)]
        out: list[Out] = []
        if not any(line.params[0].split(",")):
            return [self.numeric(461, "JOIN", "Not enough parameters")]
        for room in line.params[0].split(","):
            if not room or room.lower() in self.rooms:
                continue
            # A client that fetches history itself (CHATHISTORY) gets no replay.
            replay = 0 if history.CAP in self.caps else self.replay
            out.append(Join(room, request_id("join", room), replay or None))
            out.append(WhoRequest(room, request_id("join-names", room)))
        return out

    def _part(self, line: Line) -> list[Out]:
        missing = self.needs(line, 1)
        if missing:
            return missing
        return [Part(room, request_id("part", room)) for room in line.params[0].split(",") if room]

    def _nick(self, line: Line) -> list[Out]:
        if not line.params or not line.params[0]:
            return [self.numeric(431, "No nickname given")]
        new = line.params[0]
        if new == self.nick:
            return []
        return [Nick(new, request_id("nick", new))]

    def _names(self, line: Line) -> list[Out]:
        if not line.params:
            return [self.numeric(366, "*", "End of /NAMES list")]
        return [
            WhoRequest(room, request_id("names", room))
            for room in line.params[0].split(",")
            if room
        ]

    def _who(self, line: Line) -> list[Out]:
        mask = line.param(0) or "*"
        if mask.startswith("#"):
            return [WhoRequest(mask, request_id("who", mask))]
        if mask == "*" or "*" in mask or "?" in mask:
            return [self.numeric(315, mask, "End of /WHO list")]
        return [Whois(mask, request_id("who", mask))]

    def _whois(self, line: Line) -> list[Out]:
        missing = self.needs(line, 1)
        if missing:
            return [self.numeric(431, "No nickname given")]
        name = line.params[-1].split(",")[0]
        return [Whois(name, request_id("whois", name))]

    def _topic(self, line: Line) -> list[Out]:
        missing = self.needs(line, 1)
        if missing:
            return missing
        room = line.params[0]
        if len(line.params) < 2:
            return [RoomsRequest(request_id("topic", room))]
        text = strip_formatting(line.params[1])
        return [Topic(room, text or None, request_id("topic", room))]

    def _away(self, line: Line) -> list[Out]:
        text = strip_formatting(line.param(0) or "")
        return [Away(text or None, "away")]

    def _list(self, line: Line) -> list[Out]:
        return [RoomsRequest("list")]

    def _motd(self, line: Line) -> list[Out]:
        return [self.numeric(422, "MOTD File is missing")]

    def _userhost(self, line: Line) -> list[Out]:
        own = [n for n in line.params if name_key(n) == name_key(self.me())]
        found = " ".join(f"{n}=+{n}@{SERVER_NAME}" for n in own)
        return [self.numeric(302, found)]

    def _version(self, line: Line) -> list[Out]:
        return [self.numeric(351, self.version, SERVER_NAME, "the IRC door of chatctl")]

    def _tagmsg(self, line: Line) -> list[Out]:
        """Tags alone (typing notices): chatctl has nothing to carry them; dropped."""
        return []

    def _registered_again(self, line: Line) -> list[Out]:
        return [self.numeric(462, "You may not reregister")]


def _ctcp(text: str) -> tuple[str | None, bool]:
    """The text and whether it is a ``/me``; None for CTCP other than ACTION."""
    if not text.startswith("\x01"):
        return text, False
    inner = text[1:].removesuffix("\x01")
    if inner.upper().startswith("ACTION "):
        return inner[7:], True
    return None, False


_COMMANDS = {
    "PRIVMSG": IrcConnection._privmsg,
    "NOTICE": IrcConnection._privmsg,
    "JOIN": IrcConnection._join,
    "PART": IrcConnection._part,
    "NICK": IrcConnection._nick,
    "NAMES": IrcConnection._names,
    "WHO": IrcConnection._who,
    "WHOIS": IrcConnection._whois,
    "TOPIC": IrcConnection._topic,
    "AWAY": IrcConnection._away,
    "CHATHISTORY": history.request,
    "MODE": modes.mode,
    "KICK": modes.kick,
    "LIST": IrcConnection._list,
    "MOTD": IrcConnection._motd,
    "USERHOST": IrcConnection._userhost,
    "VERSION": IrcConnection._version,
    "TAGMSG": IrcConnection._tagmsg,
    "PASS": IrcConnection._registered_again,
    "USER": IrcConnection._registered_again,
}
