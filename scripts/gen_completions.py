"""Regenerate the shell completion scripts in ``completions/`` and the table behind them.

    python scripts/gen_completions.py          # rewrite the four files
    python scripts/gen_completions.py --check  # exit 1 if any file is stale

Each script is what the installed ``chatctl`` prints for
``_CHATCTL_COMPLETE=source_{bash,zsh,fish}``, normalised so that the result is the
same on every machine: surrounding blank lines are stripped (zsh only autoloads a
file whose *first* line is ``#compdef``), the file ends with one newline, and an
absolute path to the executable, should a future Typer embed one, becomes the bare
command name. The wheel installs the files into ``share/`` (see pyproject.toml).

The fourth file, ``chatctl/cli/completion_data.py``, is the table from which
``chatctl`` answers a completion request without importing Typer: every command,
option and choice with its zsh and fish lines, read off the Typer app in this process
by ``chatctl.cli.completion_table``. The app is the one source of both.

One change of substance, for zsh: Typer's script ends with ``compdef``, which is
right when the script is sourced from ``.zshrc`` but, in a file autoloaded from
``$fpath`` (``share/zsh/site-functions/_chatctl``), only registers the function on
the first Tab and completes nothing until the second. The generated file does what
Click's own zsh script does: complete at once when autoloaded, ``compdef`` when
sourced.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "completions"
TABLE = ROOT / "chatctl" / "cli" / "completion_data.py"
PROG = "chatctl"

#: shell -> file in completions/
FILES = {
    "bash": "chatctl.bash",
    "zsh": "_chatctl",
    "fish": "chatctl.fish",
}


def find_chatctl() -> str:
    """The installed console script (its name matters: Typer uses argv[0] as the program name)."""
    beside = Path(sys.executable).parent / PROG
    if beside.exists():
        return str(beside)
    found = shutil.which(PROG)
    if found:
        return found
    sys.exit(f"{PROG} is not installed; run `pip install -e .` first")


def generate(shell: str, executable: str) -> str:
    """The completion script for ``shell``, normalised."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCTL_", "_TYPER_"))}
    env["_CHATCTL_COMPLETE"] = f"source_{shell}"
    proc = subprocess.run(
        [executable],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        sys.exit(
            f"`_CHATCTL_COMPLETE=source_{shell} {executable}` failed "
            f"(exit {proc.returncode}):\n{proc.stderr}"
        )
    return normalise(proc.stdout, executable, shell)


ZSH_COMPDEF = f"compdef _{PROG}_completion {PROG}"
ZSH_AUTOLOAD_AWARE = f"""\
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # autoloaded from $fpath: this file is the body of _{PROG}, so complete now
  _{PROG}_completion "$@"
else
  # sourced or eval'ed: register the function for later
  {ZSH_COMPDEF}
fi"""


def normalise(script: str, executable: str, shell: str) -> str:
    for path in {executable, os.path.realpath(executable)}:
        script = script.replace(path, PROG)
    script = script.strip()
    if shell == "zsh":
        lines = script.splitlines()
        if lines[-1] != ZSH_COMPDEF:
            sys.exit(
                f"Typer's zsh script no longer ends with {ZSH_COMPDEF!r}; "
                "update ZSH_AUTOLOAD_AWARE in scripts/gen_completions.py"
            )
        script = "\n".join([*lines[:-1], ZSH_AUTOLOAD_AWARE])
    return script + "\n"


def table() -> str:
    """``completion_data.py`` as the Typer app makes it (imported here: it loads Typer)."""
    from chatctl.cli.completion_table import build, source

    return source(build())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed file differs from what would be generated",
    )
    args = parser.parse_args(argv)

    executable = find_chatctl()
    stale: list[str] = []
    wanted_files = [(COMPLETIONS / name, shell) for shell, name in FILES.items()]
    for path, shell in [*wanted_files, (TABLE, "table")]:
        wanted = table() if shell == "table" else generate(shell, executable)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == wanted:
            continue
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if args.check:
            stale.append(rel)
            print(f"stale: {rel} ({shell})", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8", newline="\n")
            print(f"wrote {rel}")
    if stale:
        print("run `python scripts/gen_completions.py` to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
