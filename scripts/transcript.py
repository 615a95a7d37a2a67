"""Print a real session with a chatctl server, for docs/protocol.md ("An example session").

It starts ``chatctl serve`` on a free loopback port and speaks JSON lines to it over
plain sockets, as ``nc`` would: ``>`` a line sent, ``<`` a line received, ``#`` what
another terminal did. Run it and paste its output when the protocol changes:

    .venv/bin/python scripts/transcript.py
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHATCTL = [str(Path(sys.executable).parent / "chatctl")]


class Peer:
    def __init__(self, port: int, show: bool) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.show = show

    def send(self, line: str) -> None:
        if self.show:
            print(f"> {line}")
        self.sock.sendall(line.encode() + b"\n")

    def read(self, count: int = 1) -> None:
        for _ in range(count):
            line = self.file.readline().decode().rstrip("\n")
            if self.show:
                print(f"< {line}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def say(text: str) -> None:
    print(f"# {text}")


def main() -> int:
    server = subprocess.Popen(
        [*CHATCTL, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CHATCTL_LOOP": "asyncio"},
    )
    assert server.stdout is not None
    port = 0
    for line in server.stdout:
        if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
            port = int(m.group(1))
            break
    try:
        alice = Peer(port, show=True)
        alice.send('{"type":"hello","version":2,"name":"alice","rooms":["#ops","#lobby"]}')
        alice.read(5)
        say("bob joins #ops from another terminal: chatctl join bob --room ops")
        bob = Peer(port, show=False)
        bob.send('{"type":"hello","version":2,"name":"bob","rooms":["#ops"]}')
        bob.read(3)
        alice.read()
        alice.send('{"type":"say","room":"#ops","text":"deploy at 10?","id":"a1"}')
        alice.read()
        say("bob, in his terminal, types: /msg alice yes, after standup")
        bob.send('{"type":"msg","to":"alice","text":"yes, after standup","id":"b1"}')
        alice.read()
        alice.send('{"type":"say","room":"#ops","text":"waves","action":true}')
        alice.read()
        alice.send('{"type":"msg","to":"carol","text":"hi","id":"a2"}')
        alice.read()
        alice.send('{"type":"join","room":"random","id":"a3"}')
        alice.read()
        alice.send('{"type":"rooms"}')
        alice.read()
        alice.send('{"type":"away","text":"lunch"}')
        alice.read()
        alice.send('{"type":"who","room":"#ops"}')
        alice.read()
        alice.send('{"type":"nick","name":"alicia"}')
        alice.read(2)
        alice.send('{"type":"part","room":"#lobby"}')
        alice.read()
        say("bob leaves (Ctrl-D)")
        bob.send('{"type":"bye"}')
        time.sleep(0.2)
        alice.read()
        alice.send('{"type":"bye"}')
        print("(connection closed by the server)")
        alice.close()
        bob.close()
    finally:
        server.terminate()
        server.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
