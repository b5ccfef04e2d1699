"""Whether the process that holds a run's lease (archive/lease.py) is still there: shared by the
lease and by the run views, which show a run whose owner is gone as `interrupted`.

A pid alone names a process only until it is reused, so the lease also records when its owner
started: the kernel's boot id and the process's start time (field 22 of /proc/PID/stat, clock
ticks since boot). They travel in the `owner_host` column as `HOST/BOOT_ID/START`, so no schema
change was needed; a bare `HOST` (a lease written before this) is read as it was, by pid only.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

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
    except (OverflowError, ValueError):  # not a pid this kernel can have
        return False
    return True


def boot_id() -> str | None:
    """This boot of the kernel (a fresh one after every reboot), or None where it cannot be read."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None when it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None  # field 22 counted from 1, pid and name removed


def stamp(pid: int) -> str | None:
    """`BOOT_ID/START` of a live process: what tells it from a later one with the same pid."""
    boot, start = boot_id(), process_start(pid)
    return f"{boot}/{start}" if boot and start else None


def host_field(host: str, pid_stamp: str | None) -> str:
    """The value stored in `owner_host`: the host name, and the owner's stamp when known."""
    return f"{host}/{pid_stamp}" if pid_stamp else host


def split_host(value: str | None) -> tuple[str | None, str | None]:
    """(host name, stamp or None) of a stored `owner_host`, old values (a bare host) included."""
    if value is None:
        return None, None
    parts = value.rsplit("/", 2)
    if len(parts) == 3 and parts[0]:
        return parts[0], f"{parts[1]}/{parts[2]}"
    return value, None


def is_same_process(pid: int, pid_stamp: str | None) -> bool | None:
    """Whether live `pid` is the process `pid_stamp` was taken from: None when that cannot be told
    (no stamp, or one from another boot, which may be another machine with the same name)."""
    if not pid_stamp:
        return None
    boot, _, start = pid_stamp.partition("/")
    if boot != boot_id():
        return None
    now = process_start(pid)
    return None if now is None else now == start


def owner_gone(host: str | None, pid: int | None, heartbeat: datetime | None, stale_s: float | None = None) -> bool:
    """True when the owner is dead on this host (its pid is gone, or now names a process that
    started at another time), or its heartbeat is stale. `host` is the stored `owner_host`."""
    name, pid_stamp = split_host(host)
    if name == socket.gethostname() and pid is not None:  # noqa: SIM102 (one question per line)
        if not pid_alive(pid) or is_same_process(pid, pid_stamp) is False:  # dead, or its pid reused
            return True
    age = (utcnow() - heartbeat).total_seconds() if heartbeat is not None else float("inf")
    return age >= (stale_after() if stale_s is None else stale_s)
