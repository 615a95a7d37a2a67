"""``chatctl send`` and ``chatctl tail``, real processes against a real ``chatctl serve``."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from chatctl.exitcodes import ExitCode
from tests.support import (
    FACTOR,
    LineReader,
    PipedClient,
    chatctl_command,
    env,
    run_chatctl,
    serve_process,
)

STAMP = r"\[\d\d:\d\d:\d\d\]"


def test_send_exits_0_once_the_room_has_it_and_14_when_refused(tmp_path: Path) -> None:
    with serve_process("--history", str(tmp_path / "h.sqlite3")) as serve:
        port = str(serve.port)
        watcher = PipedClient("watcher", serve.port, "--room", "ops").joined()
        try:
            sent = run_chatctl("send", "--port", port, "--room", "ops", "--as", "ci", "deploy done")
            assert sent.returncode == 0, sent.stderr
            assert sent.stdout == ""
            watcher.out.wait_for(rf"^{STAMP} ci: deploy done$")
            piped = run_chatctl(
                "send", "--port", port, "-r", "ops", "--as", "ci", "-", input="two\nlines\n"
            )
            assert piped.returncode == 0, piped.stderr
            watcher.out.wait_for(r"^ +lines$")  # one message of two lines
            private = run_chatctl("send", "--port", port, "--to", "watcher", "--as", "ci", "psst")
            assert private.returncode == 0, private.stderr
            watcher.out.wait_for(r"\[PM from ci\] psst")
            nobody = run_chatctl("send", "--port", port, "--to", "nobody", "--as", "ci", "hi")
            assert nobody.returncode == ExitCode.NOT_SENT
            assert "no_such_user" in nobody.stderr
            empty = run_chatctl("send", "--port", port, "--as", "ci", "   ")
            assert empty.returncode == ExitCode.NOT_SENT
            assert "Traceback" not in empty.stderr + nobody.stderr
        finally:
            watcher.close_stdin()
            watcher.wait()
            watcher.kill()


def test_send_while_the_name_is_online_speaks_as_name_send(tmp_path: Path) -> None:
    with serve_process("--history", str(tmp_path / "h.sqlite3")) as serve:
        alice = PipedClient("alice", serve.port).joined()
        try:
            sent = run_chatctl("send", "--port", str(serve.port), "--as", "alice", "from cron")
            assert sent.returncode == 0, sent.stderr
            alice.out.wait_for(rf"^{STAMP} alice-send: from cron$")
        finally:
            alice.close_stdin()
            alice.wait()
            alice.kill()


def test_tail_prints_the_last_messages_then_follows_as_json(tmp_path: Path) -> None:
    with serve_process("--history", str(tmp_path / "h.sqlite3")) as serve:
        port = str(serve.port)
        lines = "".join(f"m{i}\n" for i in range(12))  # one piped client: 12 processes is slow
        said = run_chatctl("join", "ci", "--port", port, "--room", "ops", input=lines)
        assert said.returncode == 0, said.stderr
        last = run_chatctl("tail", "--port", port, "--room", "ops", "--as", "reader")
        assert last.returncode == 0, last.stderr
        assert [line.split(": ", 1)[1] for line in last.stdout.splitlines()] == [
            f"m{i}" for i in range(2, 12)
        ]
        since = run_chatctl("tail", "--port", port, "-r", "ops", "--since", "1h", "--json")
        assert since.returncode == 0, since.stderr
        frames = [json.loads(line) for line in since.stdout.splitlines()]
        assert [f["text"] for f in frames] == [f"m{i}" for i in range(12)]
        assert {tuple(sorted(f)) for f in frames} == {
            ("history", "id", "name", "room", "seq", "text", "time", "type")
        }

        follow = subprocess.Popen(
            [*chatctl_command(), "tail", "--port", port, "-r", "ops", "-f", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        assert follow.stdout is not None
        out = LineReader(follow.stdout)
        try:
            out.wait_for(r'"text":"m11"')
            assert (
                run_chatctl("send", "--port", port, "-r", "ops", "--as", "ci", "live").returncode
                == 0
            )
            out.wait_for(r'"text":"live"')
            live = json.loads(next(x for x in out.snapshot() if '"text":"live"' in x))
            assert "history" not in live
            assert live["room"] == "#ops"
        finally:
            follow.send_signal(signal.SIGINT)
            assert follow.wait(10 * FACTOR) == 0, follow.stderr.read() if follow.stderr else ""
            out.join()
            for stream in (follow.stdout, follow.stderr):
                stream.close()
        bad = run_chatctl("tail", "--port", port, "--since", "yesterday")
        assert bad.returncode == ExitCode.USAGE
        assert "not a duration" in bad.stderr
