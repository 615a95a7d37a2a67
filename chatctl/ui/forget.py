"""``chatctl forget``: the one line it prints, and its exit code."""

from __future__ import annotations

from chatctl import eventloop
from chatctl.client import ClaimBook, ClientError, TlsOptions, forget_claim
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.ui.errors import print_error


def run_forget(
    host: str, port: int, name: str, tls: TlsOptions | None, password: str | None
) -> int:
    book = ClaimBook.default()
    try:
        eventloop.run(forget_claim(host, port, name, book, tls=tls, password=password))
    except ClientError as exc:
        print_error(str(exc))
        return exit_code_for(exc)
    print(f"{name} is no longer claimed at {host}:{port}")
    return ExitCode.OK
