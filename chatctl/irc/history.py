"""CHATHISTORY (IRCv3 ``draft/chathistory``): the history chatctl keeps, as IRC asks for it.

Pure. chatctl pages a room's history backwards by ``seq`` and forwards from a time,
so ``LATEST`` (``*`` or ``timestamp=``) and ``BEFORE msgid=`` map one-to-one; the
others (``AFTER``, ``AROUND``, ``BETWEEN``, ``TARGETS``) are refused with a standard
``FAIL``. IRC users' names are not claimed, so they have no private history: a
``CHATHISTORY`` of a nick is an empty batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chatctl.irc.events import SERVER_NAME
from chatctl.irc.lines import Line, middle
from chatctl.irc.replies import batched, request_id
from chatctl.protocol import MAX_HISTORY, HistoryRequest

if TYPE_CHECKING:
    from chatctl.irc.connection import IrcConnection
    from chatctl.irc.modes import Out

CAP = "draft/chathistory"


def request(conn: IrcConnection, line: Line) -> list[Out]:
    if len(line.params) < 4:
        return [_fail("NEED_MORE_PARAMS", line.param(0) or "*", "Not enough parameters")]
    sub, target, ref, count = line.params[:4]
    sub = sub.upper()
    try:
        limit = max(1, min(MAX_HISTORY, int(count)))
    except ValueError:
        return [_fail("INVALID_PARAMS", sub, "the limit is a number")]
    if sub not in ("LATEST", "BEFORE"):  # before the target: TARGETS has none
        return _refused(sub)
    if not target.startswith("#"):
        return list(batched(conn, target, [], always=True))  # no private history
    id = request_id("chathistory", target)
    if sub == "LATEST" and ref == "*":
        return [HistoryRequest(target, limit, id=id)]
    kind, _, value = ref.partition("=")
    if sub == "LATEST" and kind == "timestamp":
        since = _time(value)
        if since is not None:
            return [HistoryRequest(target, limit, since=since, id=id)]
    if sub == "BEFORE" and kind == "msgid":
        seq = _seq(value)
        if seq is not None:
            return [HistoryRequest(target, limit, before=seq, id=id)]
    return _refused(sub)


def _refused(sub: str) -> list[Out]:
    if sub not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS"):
        return [_fail("UNKNOWN_COMMAND", sub, "no such CHATHISTORY subcommand")]
    return [_fail("INVALID_PARAMS", sub, "chatctl has LATEST * or timestamp=, BEFORE msgid=")]


def _fail(code: str, context: str, text: str) -> str:
    return f":{SERVER_NAME} FAIL CHATHISTORY {code} {middle(context)} :{text}"


def _time(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _seq(msgid: str) -> int | None:
    """``42#lobby`` (or a later line of it, ``42#lobby/1``) -> 42."""
    seq, _, _room = msgid.partition("/")[0].partition("#")
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 18):  # "²" is a digit too
        return None
    return int(seq) or None
