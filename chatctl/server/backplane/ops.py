"""What servers tell each other through the backplane: ops, batches, stream entries.

Pure (no I/O). A server's ops of one loop iteration go to Redis as one batch: one
script call that gives each room op its room's next ``seq`` and appends the batch
to the one stream, atomically, so the stream's order is every server's order and
a ``seq`` is never given twice. Every server, the sender's own included, acts on
an op only when it reads it back from the stream (docs/design.md, "The backplane").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from chatctl.protocol import name_key


class _Op(msgspec.Struct, frozen=True, tag_field="k", omit_defaults=True, array_like=True):
    pass


class Said(_Op, tag="m", frozen=True):
    """A message in ``room`` (or an operator's action: ``event``, ``target``, ``topic``)."""

    room: str
    name: str
    text: str
    time: float
    id: str | None = None
    action: bool = False
    event: str | None = None
    target: str | None = None
    topic: str | None = None


class Came(_Op, tag="j", frozen=True):
    """``name`` entered ``room``; ``quiet``: presence only (a resync), never announced."""

    room: str
    name: str
    time: float
    quiet: bool = False


class Went(_Op, tag="p", frozen=True):
    """``name`` left ``room``: parted (``left`` False) or disconnected, with ``reason``.
    ``server``: whose member it was, when another server tells (a dead one's)."""

    room: str
    name: str
    time: float
    left: bool = True
    reason: str | None = None
    server: str | None = None


class Online(_Op, tag="o", frozen=True):
    """``name`` said hello on server ``server``: refused if the name is live elsewhere,
    unless ``takeover`` (its owner, proven by the claim's secret, is back elsewhere: the
    old session goes)."""

    name: str
    server: str
    irc: bool = False
    takeover: bool = False


class Offline(_Op, tag="x", frozen=True):
    """``name`` left server ``server`` (its rooms' ``Went`` ops came first)."""

    name: str
    server: str


class Renamed(_Op, tag="n", frozen=True):
    """``old`` is now ``new`` (refused if ``new`` is live elsewhere), in each of ``rooms``."""

    old: str
    new: str
    server: str
    rooms: list[str]
    time: float


class AwaySet(_Op, tag="a", frozen=True):
    name: str
    text: str | None = None


class Claimed(_Op, tag="c", frozen=True):
    """``name`` was claimed (``hashed``: its secret's SHA-256, hex): every server keeps it."""

    name: str
    hashed: str
    time: float


class Forgot(_Op, tag="f", frozen=True):
    """The claim on ``name`` was dropped."""

    name: str


class ReadTo(_Op, tag="r", frozen=True):
    """The claimed name (key) ``reader`` has been shown ``room`` up to ``seq``."""

    reader: str
    room: str
    seq: int


class Direct(_Op, tag="d", frozen=True):
    """A private message for ``to``, wherever they are connected."""

    name: str
    to: str
    text: str
    time: float
    id: str | None = None
    action: bool = False
    away: str | None = None


class Banned(_Op, tag="b", frozen=True):
    """A ban made on one server (``room``: every room, if the server's), kept by all; the
    server where its target is puts them out (``said``: the operator's words)."""

    room: str
    key: str | None
    network: str | None
    until: float | None
    by: str
    reason: str | None
    shown: str
    said: str


class Unbanned(_Op, tag="u", frozen=True):
    room: str
    shown: str


class Kicked(_Op, tag="k", frozen=True):
    """``name`` put out of ``room`` by an operator on another server: by theirs."""

    room: str
    name: str
    said: str


class Ruled(_Op, tag="g", frozen=True):
    """An operator's rule for ``room`` (``do``: op, deop, mute, unmute, voice, devoice,
    moderate, unmoderate) about the name key ``key``, until ``until``: every server that
    has the room applies it (the speaker's server is the one that enforces a mute)."""

    room: str
    do: str
    key: str
    until: float | None = None


Op = (
    Said
    | Came
    | Went
    | Online
    | Offline
    | Renamed
    | AwaySet
    | Direct
    | Claimed
    | Forgot
    | ReadTo
    | Banned
    | Unbanned
    | Kicked
    | Ruled
)

#: A batch: who sent it, its number from that sender (to drop a retried one), its ops.
Batch = tuple[str, int, list[Op]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(list[Op])
_numbers = msgspec.json.Decoder(list[int])

#: What the script is told of each op, beside the batch it stores as it is:
#: (kind, room, name key, name, server). Kinds: m message, j join, J quiet join, p part,
#: o online, O online taking the name over, x offline, n nick (room: the rooms, one per
#: line; name: the new name key and name); the others are only kept in order.
OpArgs = tuple[str, str, str, str, str]

#: The ``seq`` result of an op that took none, and of one refused (a name live elsewhere).
NO_SEQ = 0
REFUSED = -1


def encode_ops(ops: Sequence[Op]) -> bytes:
    return _encoder.encode(list(ops))


def decode_ops(data: bytes) -> list[Op]:
    return _decoder.decode(data)


def op_args(op: Op, key: str, origin: str) -> OpArgs:
    """The fields the script needs of ``op``; ``key``: the name key of its person;
    ``origin``: the server sending it."""
    match op:
        case Said(room=room):
            return ("m", room, key, "", "")
        case Came(room=room, name=name, quiet=quiet):
            return ("J" if quiet else "j", room, key, name, origin)
        case Went(room=room, name=name, server=server):
            return ("p", room, key, name, server or origin)
        case Online(name=name, server=server, irc=irc, takeover=takeover):
            kind = "O" if takeover else "o"
            return (kind, "", key, f"{server} {name} {'i' if irc else 'c'}", server)
        case Offline(server=server):
            return ("x", "", key, "", server)
        case Renamed(new=new, server=server, rooms=rooms):
            return ("n", "\n".join(rooms), key, f"{name_key(new)} {new}", server)
        case AwaySet(text=text):
            return ("a", "", key, text or "", "")
        case Direct():  # nothing for the script to do, but to keep them in order
            return ("d", "", key, "", "")
        case Claimed():
            return ("c", "", key, "", "")
        case Forgot():
            return ("f", "", key, "", "")
        case ReadTo():
            return ("r", "", key, "", "")
        case Banned() | Unbanned() | Kicked() | Ruled():  # moderation: kept in order
            return ("b", "", key, "", "")
    raise AssertionError(op)  # pragma: no cover


def entry_ops(batch: bytes, results: bytes) -> Iterator[tuple[Op, list[int]]]:
    """A stream entry's ops, each with what the script gave it: its ``seq`` (0: none,
    -1: refused), or a nick's, one per room."""
    numbers: list[list[int]]
    if b";" in results:  # a nick's: one seq per room
        numbers = [[int(n or 0) for n in r.split(b";")] for r in results.split(b",")]
    else:  # one number each, read in C: this runs for every op of every server
        numbers = [[n] for n in _numbers.decode(b"[" + results + b"]")]
    yield from zip(decode_ops(batch), numbers, strict=True)
