"""A minimal asyncio line relay: each complete line from one client goes to all the others.

The yardstick for chatctl in benchmarks/compare.py: no protocol, no names, no
order beyond what one event loop gives for free. Lines are forwarded in the
chunks they arrive in (one write per receiver per read), a receiver with more
than 1 MiB unsent is cut off, a line longer than 64 KiB closes its sender.

    python benchmarks/relay.py [PORT]     # prints "listening on 127.0.0.1:PORT"
"""

import asyncio
import sys

MAX_QUEUE = 1024 * 1024
MAX_LINE = 64 * 1024
clients: set["Relay"] = set()


class Relay(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.partial = transport, b""
        clients.add(self)

    def data_received(self, data: bytes) -> None:
        data = self.partial + data if self.partial else data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        if len(self.partial) > MAX_LINE:
            self.transport.abort()
        if end:
            lines = data[:end] if end < len(data) else data
            for other in clients:
                if other is not self and not other.transport.is_closing():
                    other.transport.write(lines)
                    if other.transport.get_write_buffer_size() > MAX_QUEUE:
                        other.transport.abort()  # a slow reader must not hold up the room

    def connection_lost(self, exc: Exception | None) -> None:
        clients.discard(self)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Relay, "127.0.0.1", port, backlog=4096)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
