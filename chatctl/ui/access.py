"""Getting in: the room password and trust in a TLS server, asked of the user in a terminal.

Questions are asked outside any event loop and before any prompt runs: the
command's coroutine raises ``AskUser`` out of ``asyncio.run``, the question is
asked on the terminal, and the command starts again with the answer. Piped,
nothing is asked: an unknown server is refused unless ``--fingerprint`` vouches
for it, and a missing password is an error.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from chatctl.client import ClientError, Refused, TlsOptions, UnknownServer
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import ErrorCode
from chatctl.tls import TlsSetupError
from chatctl.ui.errors import print_error

PASSWORD_ENV = "CHATCTL_PASSWORD"  # noqa: S105  the variable's name, not a password


class AskUser(Exception):
    """Raised out of a command's event loop: ask about ``error``, then run again.

    ``where``: the server that asked, when the command had several to try.
    """

    def __init__(self, error: ClientError, where: str | None = None) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.where = where


class PasswordFileError(Exception):
    """The password file cannot be used; the message names the file, never its content."""


def read_password(path: Path | None) -> str | None:
    """The password from ``--password-file``, else ``$CHATCTL_PASSWORD``; None if neither.

    One trailing newline (``\\n`` or ``\\r\\n``) is dropped from the file; the rest is
    the password, spaces included.
    """
    if path is None:
        return os.environ.get(PASSWORD_ENV) or None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = os.strerror(exc.errno).lower() if isinstance(exc, OSError) and exc.errno else ""
        raise PasswordFileError(
            f"cannot read the password file {path}: {why or 'not UTF-8 text'}"
        ) from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise PasswordFileError(f"the password file {path} is empty")
    return password


def worth_asking(error: ClientError, interactive: bool, password: str | None) -> bool:
    """Whether a terminal user could fix this failure by answering a question."""
    if not interactive:
        return False
    if isinstance(error, UnknownServer):
        return True
    return isinstance(error, Refused) and error.code == ErrorCode.PASSWORD_REQUIRED and not password


def ask(error: ClientError, tls: TlsOptions | None, where: str) -> tuple[bool, str | None]:
    """Ask the user; ``(go on, password typed)``. Prints why when not going on."""
    if isinstance(error, UnknownServer):
        assert tls is not None  # noqa: S101  narrows: UnknownServer comes only with TLS
        return _trust(error, tls), None
    try:
        password = getpass.getpass(f"Password for the chat room at {where}: ")
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")
        password = ""
    if not password:
        print_error("no password given")
        return False, None
    return True, password


def _trust(error: UnknownServer, tls: TlsOptions) -> bool:
    known = tls.known_servers
    sys.stderr.write(
        f"The server {error.where} is not known yet, and no CA vouches for its certificate.\n"
        f"Its fingerprint is {error.fingerprint}\n"
        "Compare it with the fingerprint its `chatctl serve --tls` logged at start.\n"
        f"Trust this server, and remember it in {known.path}? [y/N] "
    )
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        print_error(f"{error.where} not trusted: nothing was sent to it")
        return False
    try:
        known.add(error.where, error.fingerprint)
    except TlsSetupError as exc:
        print_error(str(exc))
        return False
    return True


def run_asking(
    run: Callable[[TlsOptions | None, str | None], int],
    tls: TlsOptions | None,
    password: str | None,
    where: str,
) -> int:
    """Run a command (``run(tls, password)``, which calls asyncio.run), asking and
    running again for as long as its failure is one the user can answer."""
    while True:
        try:
            return run(tls, password)
        except AskUser as need:
            go_on, typed = ask(need.error, tls, need.where or where)
            if not go_on:
                return exit_code_for(need.error)
            password = typed or password
        except KeyboardInterrupt:
            return ExitCode.OK
