"""How long ``chatctl`` takes to start, measured as whole processes, as a shell runs them.

    .venv/bin/python benchmarks/startup.py            # median of 10 runs of each command
    .venv/bin/python benchmarks/startup.py --runs 30  # steadier figures
    .venv/bin/python benchmarks/startup.py --json     # one JSON object
    git archive OLD chatctl | tar -x -C /tmp/old && \\
        .venv/bin/python benchmarks/startup.py --source /tmp/old   # another commit's code

Start-up is what a user waits for on every ``--help`` and every Tab: a completion
answer (bash, zsh or fish) should take at most 120 ms and ``chatctl --help`` at most
200 ms (median wall time). Each command runs once to warm the file cache and write its
bytecode, then ``--runs`` times in turn (command by command, round by round), so that
drift on the machine hits every command alike. Wall time is the target; the CPU time of
the process (user + system) is printed beside it because it barely moves when other
programs share the machine, so two runs on a busy machine compare by that column.
``python -c pass`` is the floor no command can go below, and ``import typer`` the floor
of any command Typer answers (a completion request is answered without it, from a
table). Figures depend on the machine: compare runs made on the same one, never in a
unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One command line to time, and the bound (ms, median wall time) it should meet, if any."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    target_ms: float | None = None
    #: Text its stdout must contain: a command that fails fast proves nothing.
    expect: str = ""


@dataclass(frozen=True)
class Row:
    """One command's figures, in ms."""

    command: str
    median_ms: float
    min_ms: float
    cpu_median_ms: float
    target_ms: float | None

    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        met = "met" if self.median_ms <= self.target_ms else "MISSED"
        return f"<= {self.target_ms:g}: {met}"


def chatctl() -> list[str]:
    """The installed console script, as a user runs it (beside this Python, else on PATH)."""
    beside = Path(sys.executable).parent / "chatctl"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chatctl")
    return [found] if found else [sys.executable, "-m", "chatctl"]


def cases() -> list[Case]:
    exe = chatctl()
    complete = {"_CHATCTL_COMPLETE": "complete_bash", "COMP_WORDS": "chatctl s", "COMP_CWORD": "1"}
    zsh = {"_CHATCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "chatctl s"}
    fish = {**zsh, "_CHATCTL_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    return [
        Case("python -c pass", [sys.executable, "-c", "pass"]),
        Case("python -c 'import typer'", [sys.executable, "-c", "import typer"]),
        Case("chatctl --help", [*exe, "--help"], target_ms=200, expect="Usage: chatctl"),
        Case("chatctl serve --help", [*exe, "serve", "--help"], expect="--max-clients"),
        Case("completion 'chatctl s'", exe, complete, target_ms=120, expect="serve\nsend\nstatus"),
        Case("completion zsh", exe, zsh, target_ms=120, expect='"serve":"Run a chat'),
        Case("completion fish", exe, fish, target_ms=120, expect="serve\tRun a chat"),
        Case("chatctl --version", [*exe, "--version"], expect="chatctl "),
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(case: Case, base_env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall, CPU) of one run in ms; exits if the command fails or says the wrong thing."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        case.args,
        env={**base_env, **case.env},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    wall = (time.perf_counter() - start) * 1000
    if proc.returncode != 0 or case.expect not in proc.stdout:
        sys.exit(f"{case.name}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return wall, (_children_cpu() - cpu) * 1000


def measure(runs: int, base_env: dict[str, str], cwd: str) -> list[Row]:
    todo = cases()
    wall: dict[str, list[float]] = {case.name: [] for case in todo}
    cpu: dict[str, list[float]] = {case.name: [] for case in todo}
    for case in todo:
        run_once(case, base_env, cwd)  # warm the file cache and the bytecode
    for _ in range(runs):
        for case in todo:
            w, c = run_once(case, base_env, cwd)
            wall[case.name].append(w)
            cpu[case.name].append(c)
    return [
        Row(
            case.name,
            round(statistics.median(wall[case.name]), 1),
            round(min(wall[case.name]), 1),
            round(statistics.median(cpu[case.name]), 1),
            case.target_ms,
        )
        for case in todo
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command (10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--source",
        type=Path,
        help="a folder holding another chatctl package (another commit's) to time instead",
    )
    args = parser.parse_args(argv)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATCTL_", "_TYPER"))}
    base_env["COLUMNS"] = "100"
    # As installed: pip compiles the bytecode, and an editable install writes it on first
    # run, unless PYTHONDONTWRITEBYTECODE says not to; then every run would compile
    # chatctl's own modules again, which no user waits for.
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    cwd = str(Path(__file__).resolve().parent)  # no chatctl/ here to shadow the one timed
    if args.source is not None:
        base_env["PYTHONPATH"] = str(args.source.resolve())
    rows = measure(args.runs, base_env, cwd)

    python = sys.version.split()[0]
    if args.json:
        results = [asdict(row) for row in rows]
        print(json.dumps({"runs": args.runs, "python": python, "results": results}))
        return 0
    print(f"{args.runs} runs each, ms (Python {python}, {os.cpu_count()} CPUs)")
    print(f"{'command':<28}{'median':>8}{'min':>8}{'CPU':>8}  target (median)")
    for row in rows:
        print(
            f"{row.command:<28}{row.median_ms:>8.1f}{row.min_ms:>8.1f}{row.cpu_median_ms:>8.1f}"
            f"  {row.verdict()}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
