"""The process's open-file limit: each client, and each bench connection, is one file.

The usual soft limit (1024) would cap a server far below ``--max-clients`` (and a
load generator far below its clients) on a system that allows more.
"""

from __future__ import annotations

import contextlib
import resource


def raise_open_file_limit(wanted: int | None = None) -> int:
    """Raise the soft open-file limit to ``wanted`` (None: as far as allowed); return it.

    Past the hard limit only root may go, so that is tried, and otherwise the soft
    limit goes as far as the hard one.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = hard == resource.RLIM_INFINITY
    if wanted is None:
        wanted = max(soft, 1 << 20) if unlimited else hard
    if soft < wanted:
        if not unlimited and hard < wanted:
            with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
            target = wanted if unlimited else min(wanted, hard)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
