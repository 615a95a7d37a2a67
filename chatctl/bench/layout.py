"""Who is in which room and who sends where: pure arithmetic, shared by the parent (expected
deliveries) and the workers (hellos, marks, windows), so both sides agree without talking.

The single-room scenarios are one room (index 0, ``#lobby``) that every client is in, with
the first ``senders`` clients sending. ``rooms`` lays ``rooms x members`` seats out in a row,
seat ``s`` in room ``s % rooms``, and gives client ``c`` the seats ``c*k`` to ``c*k+k-1``
(``k`` rooms per client): consecutive seats are in different rooms, every room gets exactly
``members`` seats, and when ``k`` does not divide the seats the last client has fewer rooms.
The first ``senders`` members of each room send into it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """``rooms`` rooms of ``members`` members each, ``per_client`` rooms per client."""

    rooms: int = 1
    members: int = 0
    per_client: int = 1
    senders: int = 1
    #: False: one room everyone is in (fanout, rate, stuck, idle), the server's default room.
    named: bool = False
    #: Makes room names unique to one run (two benches on one server do not mix).
    tag: str = ""

    @classmethod
    def single(cls, clients: int, senders: int) -> Layout:
        return cls(rooms=1, members=clients, per_client=1, senders=senders)

    @property
    def clients(self) -> int:
        return -(-self.rooms * self.members // self.per_client)

    def rooms_of(self, client: int) -> list[int]:
        """The rooms client number ``client`` is in, in the order it asks for them."""
        if not self.named:
            return [0]
        seats = range(client * self.per_client, (client + 1) * self.per_client)
        return [s % self.rooms for s in seats if s < self.rooms * self.members]

    def sends_to(self, client: int) -> list[int]:
        """The rooms ``client`` sends into: those where it is one of the first members."""
        if not self.named:  # spread over the clients, so over the workers too
            n = self.members
            return [0] if client * self.senders // n < (client + 1) * self.senders // n else []
        return [r for r in self.rooms_of(client) if self._rank(client, r) < self.senders]

    def _rank(self, client: int, room: int) -> int:
        """Where ``client`` comes among ``room``'s members (seats ``room + j*rooms``)."""
        for j in range(self.members):
            if (room + j * self.rooms) // self.per_client == client:
                return j
        return self.members

    def name(self, room: int) -> str | None:
        """The room's name on the wire; None for the server's default room."""
        return f"#b{self.tag}-{room}" if self.named else None


def homes(layout: Layout, clients: int, servers: int) -> tuple[int, ...]:
    """Each client's server (an index) in a cluster of ``servers``: round-robin over the
    senders and, apart, over the others, so that every server has its share of both (plain
    round-robin would put fan-out's senders, every tenth client, all on odd servers)."""
    if servers <= 1:
        return (0,) * clients
    found = [0] * clients
    turns = [0, 0]  # senders, others
    for client in range(clients):
        kind = 0 if layout.sends_to(client) else 1
        found[client] = turns[kind] % servers
        turns[kind] += 1
    return tuple(found)
