"""MODE and KICK: the IRC words for chatctl's moderation, and your own user modes.

Pure. Room modes that chatctl has (``+o``, ``+v``, ``+m``, ``+b``) become ``mod``
frames; the rest are refused (472). chatctl rooms are always ``+nt`` (saying needs
the room, a topic its operators), and ``+m`` when moderated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatctl.irc.events import source
from chatctl.irc.lines import Line, strip_formatting
from chatctl.irc.replies import request_id
from chatctl.protocol import ClientFrame, Do, Moderate, RoomsRequest, name_key

if TYPE_CHECKING:
    from chatctl.irc.connection import IrcConnection

#: What a command gives: frames for the hub, lines straight back to the client.
Out = ClientFrame | str

#: Room modes from MODE that are chatctl moderation: (mode, with a name) -> what it does.
_ROOM_MODES = {
    ("+o", True): Do.OP,
    ("-o", True): Do.DEOP,
    ("+v", True): Do.VOICE,
    ("-v", True): Do.DEVOICE,
    ("+b", True): Do.BAN,
    ("-b", True): Do.UNBAN,
    ("+m", False): Do.MODERATE,
    ("-m", False): Do.UNMODERATE,
}


def mode(conn: IrcConnection, line: Line) -> list[Out]:
    missing = conn.needs(line, 1)
    if missing:
        return missing
    target, modes = line.params[0], line.param(1)
    if not target.startswith("#"):
        return _user_mode(conn, target, modes)
    room = target.lower()
    if modes is None:  # answered with the room's state (replies: 324)
        return [RoomsRequest(request_id("mode", room))]
    if modes.lstrip("+") == "b" and len(line.params) == 2:
        return [conn.numeric(368, room, "End of channel ban list")]
    sign, letters, names = "+", modes, line.params[2:]
    out: list[Out] = []
    refused: set[str] = set()
    for letter in letters:
        if letter in "+-":
            sign = letter
            continue
        if letter in "nt" and sign == "+":
            continue  # chatctl rooms always are: nothing to do
        takes_name = letter in "ovb"
        do = _ROOM_MODES.get((sign + letter, takes_name))
        if do is None:
            if letter not in refused:
                refused.add(letter)
                why = "is always set in chatctl" if letter in "nt" else "is not a mode chatctl has"
                out.append(conn.numeric(472, letter, why))
            continue
        name = names.pop(0) if takes_name and names else None
        if takes_name and name is None:
            out.append(conn.numeric(461, "MODE", "Not enough parameters"))
            continue
        if name is not None and letter == "b":
            name = name.split("!")[0]  # chatctl bans a name, not a mask
        about = f"{room},{name}" if name is not None else room
        out.append(Moderate(room, do, name, id=request_id("mode", about)))
    return out


def _user_mode(conn: IrcConnection, target: str, modes: str | None) -> list[Out]:
    """Invisible (+i) and wallops (+w) mean nothing here, but are kept as asked,
    so a client's "MODE nick +i" at connect is simply done."""
    if name_key(target) != name_key(conn.me()):
        return [conn.numeric(502, "Can't change mode for other users")]
    if not modes:
        return [conn.numeric(221, "+" + "".join(sorted(conn.user_modes)))]
    sign, changed = "+", ""
    for letter in modes:
        if letter in "+-":
            sign = letter
        elif letter not in "iw":
            return [conn.numeric(501, "Unknown MODE flag")]
        elif conn.set_user_mode(letter, sign == "+"):
            changed += sign + letter
    return [f":{source(conn.me())} MODE {conn.me()} :{changed}"] if changed else []


def kick(conn: IrcConnection, line: Line) -> list[Out]:
    missing = conn.needs(line, 2)
    if missing:
        return missing
    room, reason = line.params[0], strip_formatting(line.param(2) or "") or None
    return [
        Moderate(room, Do.KICK, name, reason, id=request_id("kick", f"{room},{name}"))
        for name in line.params[1].split(",")
        if name
    ]
