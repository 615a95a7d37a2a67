"""Bench clients that speak IRC: to the IRC door of the server bench starts, or to an IRC
server (ngIRCd) at ``--port``.

The receiving hot path is ``_Client.buffer_updated``, unchanged: an IRC line ends with
CRLF, which ends in LF, and a PRIVMSG carries the message text, mark and all, so marks and
newlines are counted as for chatctl frames. Only the rare lines without a mark (welcome
numerics, JOIN, QUIT, PING, errors) are parsed, here, one by one.

A client registers in one write (``registration``): ``CAP REQ :echo-message`` so that, as
chatctl's own clients do, a sender gets its messages back; a server without echo-message
(ngIRCd 26) answers NAK, and the run counts one receiver fewer per message, as for a line
relay. It is in once the ``366`` (end of NAMES) of each of its rooms has come.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from chatctl.bench.clients import MARK, PROBE, _Client, _Idle
from chatctl.bench.layout import Layout

if TYPE_CHECKING:
    from chatctl.bench.worker import _Worker

#: The room of the single-room scenarios, on IRC (chatctl's default room).
LOBBY = "#lobby"
#: Numerics that refuse a registration or a JOIN: the nick (432, 433, 436), the password
#: (464), a ban (465), the channel (403, 405, 471, 473, 474, 475).
_REFUSED = frozenset(b"%d" % n for n in (403, 405, 432, 433, 436, 464, 465, 471, 473, 474, 475))
#: ERR_NOMOTD: an error numeric by number, a normal part of the welcome.
_NO_MOTD = b"422"
#: Rooms in one JOIN line, well within 512 bytes.
_JOIN_BYTES = 400


def irc_clients(layout: Layout, clients: int, share: float) -> frozenset[int]:
    """The clients (numbers) that speak IRC: ``share`` of them (rounded), spread evenly over
    the senders and over the others, so that a mixed run mixes both sending and receiving."""
    if share <= 0:
        return frozenset()
    if share >= 1:
        return frozenset(range(clients))
    senders = [c for c in range(clients) if layout.sends_to(c)]
    others = [c for c in range(clients) if not layout.sends_to(c)]
    total = round(share * clients)
    from_senders = min(len(senders), round(share * len(senders)))
    chosen = _spread(senders, from_senders) + _spread(others, total - from_senders)
    return frozenset(chosen)


def _spread(among: list[int], count: int) -> list[int]:
    """``count`` of ``among``, evenly apart."""
    n = len(among)
    count = max(0, min(n, count))
    return [c for k, c in enumerate(among) if (k + 1) * count // n > k * count // n]


def registration(name: str, rooms: list[str], echo: bool = True) -> bytes:
    """What an IRC client writes on connecting, in one write: capabilities, nick, user,
    ``CAP END``, and its rooms (several JOIN lines if they do not fit in one)."""
    lines = ["CAP REQ :echo-message"] if echo else []
    lines += [f"NICK {name}", f"USER {name} 0 * :bench"]
    if echo:
        lines.append("CAP END")
    joins: list[str] = []
    for room in rooms:
        if joins and len(",".join([*joins, room])) > _JOIN_BYTES:
            lines.append("JOIN " + ",".join(joins))
            joins = []
        joins.append(room)
    if joins:
        lines.append("JOIN " + ",".join(joins))
    return "".join(f"{line}\r\n" for line in lines).encode()


def parse(line: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """``[@tags ][:source ]COMMAND params [:trailing]`` (no CRLF) as (source, command,
    params); only for the rare lines, never on the hot path."""
    if line.startswith(b"@"):
        line = line.partition(b" ")[2]
    source = b""
    if line.startswith(b":"):
        source, _, line = line[1:].partition(b" ")
    head, colon, trailing = line.partition(b" :")
    words = head.split()
    if not words:
        return source, b"", []
    if colon:
        words.append(trailing)
    return source, words[0].upper(), words[1:]


def _error_numeric(command: bytes) -> bool:
    """4xx, IRC's errors, but for ``422`` (no MOTD), a normal part of a welcome."""
    return len(command) == 3 and command[:1] == b"4" and command != _NO_MOTD


def _pong(params: list[bytes]) -> bytes:
    return b"PONG :" + (params[-1] if params else b"") + b"\r\n"


class _IrcClient(_Client):
    """A room client over IRC: the same counters and pump as ``_Client``; other lines in
    and messages out are IRC's."""

    def __init__(self, worker: _Worker, number: int) -> None:
        super().__init__(worker, number)
        layout = worker.plan.layout
        self.targets = [layout.name(r) or LOBBY for r in self.rooms]
        self._privmsg = {r: f"PRIVMSG {layout.name(r) or LOBBY} :" for r in self.sends_to}
        #: End of NAMES (366) received: one for each room, and the client is in.
        self.names = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self.transport.write(registration(self.name, self.targets))

    def encode(self, texts: list[str], room: int) -> bytes:
        head = self._privmsg[room]
        return "".join(f"{head}{text}\r\n" for text in texts).encode()

    def _other_lines(self, chunk: bytes) -> None:
        w = self.w
        for raw in chunk.split(b"\n"):
            line = raw.rstrip(b"\r")
            if not line.strip() or MARK in line:
                continue
            w.other += 1
            self._line(*parse(line))

    def _line(self, source: bytes, command: bytes, params: list[bytes]) -> None:
        w = self.w
        if command == b"PING":
            if self.transport is not None:
                self.transport.write(_pong(params))  # long runs: the server checks we live
        elif command == b"366":
            self.names += 1
            if self.names >= len(self.rooms) and not self.joined:
                self.joined = True
                if not self.ready.done():
                    self.ready.set_result(None)
        elif command == b"QUIT":
            nick = source.split(b"!", 1)[0].decode(errors="replace")
            reason = params[-1].decode(errors="replace") if params else ""
            w.leaves[(nick, reason)] += 1
        elif command == b"CAP":
            if len(params) > 1 and params[1].upper() == b"NAK" and w.plan.echo:
                w.errors["CAP NAK"] += 1  # the probe said the server echoes: it does not
        elif command == b"ERROR" or _error_numeric(command):
            self._error(command, params)

    def _error(self, command: bytes, params: list[bytes]) -> None:
        w = self.w
        code = command.decode(errors="replace")
        w.errors[code] += 1
        if not self.joined:
            if (command == b"ERROR" or command in _REFUSED) and not self.ready.done():
                self.ready.set_exception(ConnectionRefusedError(code))
        elif self.sends_to and command != b"ERROR":  # a PRIVMSG not relayed
            rooms = [p.decode(errors="replace") for p in params if p.startswith(b"#")]
            w.refuse(self.sends_to, rooms[0] if rooms else None)


class _IrcIdle(_Idle):
    """An idle client over IRC: registers (and joins with ``--join``), answers pings, notes
    the probe. ``answer`` is set once it is in (001, or 366 with ``--join``) or refused
    (``refused`` then says how)."""

    def __init__(self, worker: _Worker, name: str, join: bool) -> None:
        super().__init__(worker)
        self.greeting = registration(name, [LOBBY] if join else [], echo=False)
        self._in = b"366" if join else b"001"
        self.refused: str | None = None

    def data_received(self, data: bytes) -> None:
        if not self.answer.done():
            self.head += data
            lines, _, self.head = self.head.rpartition(b"\n")
            for raw in lines.split(b"\n"):
                self._line(*parse(raw.rstrip(b"\r")))
            if self.answer.done():
                self.head = b""
        elif b"PING" in data:  # a line cut in two by a read waits for the next ping
            for raw in data.split(b"\n"):
                if raw.startswith(b"PING") or b" PING " in raw:
                    self._line(*parse(raw.rstrip(b"\r")))
        if not self.probed and PROBE in data:
            self.probed = True
            self.w.probed += 1

    def _line(self, source: bytes, command: bytes, params: list[bytes]) -> None:
        if command == b"PING" and self.transport is not None:
            self.transport.write(_pong(params))
        elif self.answer.done():
            return
        elif command == self._in:
            self.answer.set_result(command)
        elif command == b"ERROR" or command in _REFUSED:
            self.refused = command.decode(errors="replace")
            self.answer.set_result(command)
