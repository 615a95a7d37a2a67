"""The ``chatctl`` command: thin Typer glue over the cores and the terminal UI.

One module a command (``serve``, ``join``, ``export``, ``status``, ``history``, ``bench``;
``send`` and ``tail`` share ``oneshot``), the options they
share in ``options``, the Typer app in ``app``, and in ``command`` the Click classes
that make help readable and start-up fast (``coercion``).

Importing this package loads nothing but ``os`` and ``sys``: ``main`` first lets
``quickcomplete`` answer a shell completion request from a table made from the app
(no Typer: each Tab is a new process), and imports the app only otherwise. The app
loads Typer and light modules only (no asyncio, ssl, Rich, prompt_toolkit or cores):
each command imports what it runs inside its body, so ``--help`` and ``--version`` do
not pay for the server or the client (``benchmarks/startup.py`` measures it).
"""

import os
import sys


def main() -> None:
    """Entry point: no traceback reaches a user unless CHATCTL_DEBUG is set."""
    if os.environ.get("_CHATCTL_COMPLETE"):
        from chatctl.cli.quickcomplete import answer

        code = answer()
        if code is not None:
            sys.exit(code)
    if sys.argv[1:] == ["--version"]:  # what a script asks first; the same line Typer prints
        from chatctl import version_line

        sys.stdout.write(version_line() + "\n")
        sys.exit(0)
    from chatctl.cli.app import app
    from chatctl.exitcodes import ExitCode

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.OK)
    except Exception as exc:
        # Only a command that ran can raise it, so its module is loaded by now.
        from chatctl.eventloop import LoopChoiceError

        if isinstance(exc, LoopChoiceError):  # CHATCTL_LOOP is set wrong: like a bad option
            from chatctl.ui.errors import print_error

            print_error(str(exc))
            sys.exit(ExitCode.USAGE)
        if os.environ.get("CHATCTL_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            sys.stderr.write(
                f"chatctl: internal error: {type(exc).__name__}: {exc}\n"
                "Run again with CHATCTL_DEBUG=1 to see the traceback, and please report it.\n"
            )
        sys.exit(ExitCode.INTERNAL)
