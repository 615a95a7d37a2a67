"""The IRC door: a session that speaks IRC to its client and chatctl to the hub.

An IRC client is a full member: same rooms, names, pacing, limits, slow-consumer
rules and TLS, because it is a ``Session`` with three things replaced: lines in
(``chatctl.irc.lines``), what they mean (``chatctl.irc.connection``), and frames
out (``chatctl.irc.replies``; room broadcasts through an IRC ``Dialect``, encoded
once per room for all its IRC members).
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatctl import __version__
from chatctl.irc import events, replies
from chatctl.irc.connection import IrcConnection, message_targets
from chatctl.irc.events import Tags, wire
from chatctl.irc.lines import Line, LineDecoder
from chatctl.limits import Refusal
from chatctl.protocol import (
    Error,
    ErrorCode,
    Hello,
    LeaveReason,
    ProtocolError,
    Say,
)
from chatctl.server.config import ServerConfig
from chatctl.server.dialect import Dialect
from chatctl.server.session import Decoder, Session, SessionHost

#: Refused names at registration: IRC clients try another nick (433/432), not hang up.
_NICK_REFUSALS = frozenset({ErrorCode.NAME_TAKEN, ErrorCode.NAME_CLAIMED, ErrorCode.INVALID_NAME})


def _dialect(tags: Tags, echo: bool) -> Dialect:
    return Dialect(
        f"irc:{tags.name.lower()}",
        events.encoder(tags),
        hides_own_presence=True,
        hides_own_messages=not echo,
        once_per_person=True,
        claims=False,
    )


_DIALECTS = {(t, e): _dialect(t, e) for t in Tags for e in (False, True)}


class IrcSession(Session):
    """One IRC connection to the hub."""

    def __init__(self, host: SessionHost) -> None:
        super().__init__(host)
        self._irc = IrcConnection(__version__)
        #: One IRC line may make many frames (``JOIN #a,#b,...``): it spends one error at most.
        self._spent = False

    def new_decoder(self, config: ServerConfig) -> Decoder:
        return LineDecoder()

    def cost(self, frame: Any) -> int:
        """A message to several targets takes a token for each, as each would alone."""
        base = super().cost(frame)
        several = isinstance(frame, Line) and frame.params and "," in frame.params[0]
        if base and several and frame.command in ("PRIVMSG", "NOTICE"):  # one: the common line
            return max(base, len(message_targets(frame)))
        return base

    def render(self, frame: msgspec.Struct) -> bytes:
        return wire(self._irc.render(frame))

    def handle(self, frame: Any) -> None:
        if not isinstance(frame, Line):  # pragma: no cover  the line decoder makes only lines
            return
        self._spent = False
        outs = self._irc.receive(frame)
        if len(outs) == 1 and outs[0].__class__ is Say:  # the hot path: a line to a room
            self._host.received(self, outs[0])
            return
        answer: list[str] = []
        for out in outs:
            if isinstance(out, str):
                answer.append(out)
                continue
            if answer:
                self._answer(answer)
                answer = []
            if isinstance(out, Hello):  # the capabilities are settled: so is the encoding
                self.dialect = _DIALECTS[self._irc.tags, self._irc.echo]
            self._host.received(self, out)
            if self.closing:
                return
        if answer:
            self._answer(answer)

    def _answer(self, lines: list[str]) -> None:
        self._host.sending(self)  # after the room broadcasts queued before it
        self.queue(wire(lines))

    def send_error(
        self, exc: ProtocolError, id: str | None = None, room: str | None = None
    ) -> None:
        """As for chatctl clients, but an error IRC does not show (about a NOTICE, or the
        door's own follow-up request) costs nothing, and one line costs one error at most."""
        data = self.render(Error(exc.code, exc.message, id=id, room=room))
        if not data:
            return
        self._host.sending(self)
        self.queue(data)
        if not exc.fatal and not self._spent:
            self._spent = True
            self.spend_error()

    def refuse(self, refusal: Refusal) -> None:
        numeric = replies.NUMERICS.get(refusal.code)
        if refusal.code in _NICK_REFUSALS and numeric is not None:  # another nick, and again
            nick = self._irc.nick or "*"
            self._irc.name_refused()
            self.dialect = None
            self.queue(wire([self._irc.numeric(numeric, nick, refusal.message)]))
            return
        if refusal.code == ErrorCode.BANNED:
            numeric = 465  # ERR_YOUREBANNEDCREEP: from the server, not a channel (474)
        lines = []
        if numeric is not None:  # a password (464) or a ban (465), then the ERROR that closes
            lines.append(self._irc.numeric(numeric, refusal.message))
        lines.append(self._irc.closing(refusal.message))
        self.queue(wire(lines))
        self.close(LeaveReason.REFUSED)

    def dismiss(self, error: ProtocolError) -> None:
        self._host.sending(self)
        self.queue(wire([self._irc.closing(error.message)]))
        self.close(error.code)
