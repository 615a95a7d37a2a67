"""compare.py's "Machine" section: the CPUs, the versions of everything measured, the event
loop, where history files go, and the time."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _filesystem(path: str) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1]
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def machine_facts(
    chatctl: list[str],
    baseline: str | None,
    history: bool = False,
    ngircd: str | None = None,
    redis: bool = False,
) -> list[str]:
    from chatctl.eventloop import choose  # as installed; CHATCTL_LOOP reaches both too

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.M)
    ncat_version = None
    if shutil.which("ncat"):  # --servers chatctl needs no ncat
        ncat = subprocess.run(["ncat", "--version"], capture_output=True, text=True, check=False)
        ncat_version = re.search(r"Version ([\d.]+)", ncat.stdout + ncat.stderr)
    version = subprocess.run([*chatctl, "--version"], capture_output=True, text=True).stdout
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    lines = [
        f"- {os.cpu_count()} CPUs (`nproc`), {model.group(1) if model else 'unknown CPU'}",
        f"- Linux {platform.release()}, Python {platform.python_version()}, "
        f"{version.strip()} (commit {head or '?'}), "
        f"ncat {ncat_version.group(1) if ncat_version else '(not installed)'}",
        f"- chatctl's event loop (server and generator): {choose()[0]}",
    ]
    if baseline:
        lines.append(f"- baseline: {baseline}, built with its `speed` extra (uvloop)")
    if ngircd:
        out = subprocess.run([ngircd, "--version"], capture_output=True, text=True, check=False)
        lines.append(f"- {(out.stdout.splitlines() or ['ngIRCd (version unknown)'])[0]}")
    if redis:
        found = shutil.which("redis-server")
        said = ""
        if found:
            said = subprocess.run(
                [found, "--version"], capture_output=True, text=True, check=False
            ).stdout
        found_version = re.search(r"v=([\d.]+)", said)
        redis_version = found_version.group(1) if found_version else "?"
        lines.append(
            f"- cluster servers: redis-server {redis_version} started by bench on loopback, "
            "AOF and snapshots off; the servers `serve --backplane`, `--no-history`"
        )
    if history:
        tmp = tempfile.gettempdir()
        lines.append(
            f"- chatctl+history: `bench --history`, its file in a new folder in {tmp} "
            f"({_filesystem(tmp)}) each run; chatctl: `--no-history`"
        )
    lines.append(f"- {time.strftime('%Y-%m-%d %H:%M %Z')}")
    return lines
