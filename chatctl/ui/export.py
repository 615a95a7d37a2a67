"""``chatctl export``: a room's history as a timeline, in plain text, Markdown or JSON lines.

It asks the server's status first: a server that keeps no history is exit 15 (rather
than an empty timeline that looks like a quiet room), and one whose history stopped is
said on stderr. Then it joins the room as ``tail`` does (``NAME-export`` while NAME is
online), pages back through every message since ``since`` (all of them without), at
most ``EXPORT_MAX``, leaves, and writes the timeline (``chatctl.ui.timeline``).

``--output FILE`` is written whole or not at all: into a new file beside it, renamed
over FILE once complete; a FILE that cannot be written is exit 2, before connecting.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from chatctl.addresses import Address
from chatctl.client import TlsOptions, fetch_status, first_answer, past
from chatctl.exitcodes import ExitCode
from chatctl.ui.errors import print_error, print_skipped
from chatctl.ui.oneshot import join_as, reporting
from chatctl.ui.render import dated_clock
from chatctl.ui.timeline import timeline

#: Messages an export holds at most (200 pages of 500): the newest, and a line on stderr.
EXPORT_MAX = 100_000


def run_export(
    servers: Sequence[Address],
    name: str,
    room: str,
    since: float | None,
    format: str,
    output: Path | None,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    try:
        out = _Output(output)
    except OSError as exc:
        print_error(f"cannot write {output}: {exc.strerror or exc}")
        return ExitCode.USAGE
    try:
        code = reporting(_export(servers, name, room, since, format, out, tls, password))
        if code == ExitCode.OK:
            out.commit()
        return code
    except OSError as exc:
        print_error(f"cannot write {output or 'the timeline'}: {exc.strerror or exc}")
        return ExitCode.USAGE
    finally:
        out.discard()


async def _export(
    servers: Sequence[Address],
    name: str,
    room: str,
    since: float | None,
    format: str,
    out: _Output,
    tls: TlsOptions | None,
    password: str | None,
) -> int:
    on, status = await first_answer(
        servers,
        lambda server: fetch_status(server.host, server.port, tls=tls, password=password),
        print_skipped,
    )
    history = status.server.history
    if history is None:
        print_error(
            f"{servers[on]} keeps no history (it runs with --no-history): nothing to export"
        )
        return ExitCode.NO_HISTORY
    if history.error is not None:
        print_error(
            f"the server stopped keeping history ({history.error}): newer messages are lost"
        )
    client = await join_as(servers[on:], name, [room], "export", tls, password)
    try:
        here = client.joined[0].room if client.joined else room
        got = await past(client, aiter(client), here, EXPORT_MAX, since)
    finally:
        await client.leave()
        await client.close()
    after = f" since {dated_clock(since)}" if since is not None else ""
    if got.more:
        print_error(f"{here} has more than {EXPORT_MAX} messages{after}: only the newest are in")
    elif not got.messages:
        print_error(f"no messages in {here}{after}: the timeline is empty")
    out.write(timeline(format, here, got.messages, since, time.time()))
    return ExitCode.OK


class _Output:
    """Where the timeline goes: stdout (no path, or ``-``), or a file written whole."""

    def __init__(self, path: Path | None) -> None:
        self._path = None if path is None or str(path) == "-" else path
        self._temp: Path | None = None
        self.stream: TextIO = sys.stdout
        if self._path is not None:
            if self._path.is_dir():
                raise IsADirectoryError(21, "it is a folder")
            temp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            # O_EXCL: never through someone's symlink; 0o666 less the umask, as `>` makes it.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self._temp = temp
            self.stream = open(fd, "w", encoding="utf-8", newline="\n")  # noqa: SIM115

    def write(self, pieces: Iterable[str]) -> None:
        try:
            for piece in pieces:
                self.stream.write(piece)
            self.stream.flush()
        except BrokenPipeError:  # `chatctl export ... | head`: the reader has what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail
            os.close(devnull)

    def commit(self) -> None:
        """FILE is the whole timeline now (stdout: nothing to do)."""
        if self._path is not None and self._temp is not None:
            self.stream.close()
            os.replace(self._temp, self._path)
            self._temp = None

    def discard(self) -> None:
        """Remove what was written if it was not committed."""
        if self._temp is not None:
            self.stream.close()
            with contextlib.suppress(OSError):
                self._temp.unlink()
            self._temp = None
