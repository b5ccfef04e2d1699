"""Whether the process that holds a run's lease (archive/lease.py) is still there: shared by the
lease and by the run views, which show a run whose owner is gone as `interrupted`."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from archive.models import utcnow

STALE_S = 30.0
"""A heartbeat older than this is a dead owner's (unless CLADE_LEASE_STALE_S says otherwise)."""


def stale_after() -> float:
    try:
        return float(os.environ.get("CLADE_LEASE_STALE_S", STALE_S))
    except ValueError:
        return STALE_S


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def owner_gone(host: str | None, pid: int | None, heartbeat: datetime | None, stale_s: float | None = None) -> bool:
    """True when the owner's pid is dead on this host, or its heartbeat is stale."""
    if host == socket.gethostname() and pid is not None and not pid_alive(pid):
        return True
    age = (utcnow() - heartbeat).total_seconds() if heartbeat is not None else float("inf")
    return age >= (stale_after() if stale_s is None else stale_s)
