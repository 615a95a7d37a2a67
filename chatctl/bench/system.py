"""What bench reads from Linux: CPU and memory of a process and of the machine from
``/proc``, and this process's CPU time.

Readings return ``None`` when ``/proc`` has no answer (the process is gone, another OS): a
figure bench cannot read is shown as unknown, not as a failure.
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _proc_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _proc_memory(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) in bytes: resident now, and its peak."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, flags=re.M))
    rss, hwm = found.get("VmRSS"), found.get("VmHWM")
    return (int(rss) * 1024 if rss else None, int(hwm) * 1024 if hwm else None)


def _machine_busy() -> float | None:
    """Seconds of CPU used by everything on the machine since boot."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK  # all but idle and iowait


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
