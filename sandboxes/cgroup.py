"""A per-job control group for the process backend: real memory and process-count limits.

rlimits alone cannot bound a job as a whole: RLIMIT_AS is per process (a fork bomb of
memory hogs multiplies it) and the kernel does not enforce RLIMIT_NPROC for root. A cgroup
bounds the job's whole tree, counts its out-of-memory kills, reports its peak memory, and
lists every process it holds, even those that left the job's session, so cleanup kills them
all. The group is made under the host process's own cgroup (never above it), so whatever
accounts for the host keeps accounting for its jobs.

Both cgroup v2 (the unified hierarchy, with `memory` and `pids` delegated) and v1 (separate
`memory` and `pids` hierarchies) are handled; where neither is writable, `Jail.create`
returns None and the backend falls back to rlimits only (`describe()` says so).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "clade-job-"


def _own_paths() -> dict[str, str]:
    """Controller name (or "" for v2) to this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _v2_base() -> Path | None:
    own = _own_paths().get("")
    if own is None or not (ROOT / "cgroup.controllers").exists():
        return None
    base = ROOT / own.lstrip("/")
    try:
        enabled = (base / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return base if {"memory", "pids"} <= set(enabled) and os.access(base, os.W_OK) else None


def _v1_bases() -> dict[str, Path] | None:
    own = _own_paths()
    bases: dict[str, Path] = {}
    for controller in ("memory", "pids"):
        mount = ROOT / controller
        if controller not in own or not (mount / "cgroup.procs").exists():
            return None
        base = mount / own[controller].lstrip("/")
        if not os.access(base, os.W_OK):
            return None
        bases[controller] = base
    return bases


def available() -> str | None:
    """Which cgroup version the process backend can use here ("v2", "v1"), or None."""
    if _v2_base() is not None:
        return "v2"
    if _v1_bases() is not None:
        return "v1"
    return None


@dataclass
class Jail:
    """One job's control group(s). Create, put the child in with `procs_files`, kill, remove."""

    version: str
    dirs: dict[str, Path]
    """Controller to directory; v2 has the single key ""."""

    @classmethod
    def create(cls, memory_bytes: int, max_processes: int) -> Jail | None:
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            v2 = _v2_base()
            if v2 is not None:
                jail = cls("v2", {"": v2 / name})
                jail.dirs[""].mkdir()
                jail._write("", "memory.max", memory_bytes)
                jail._write("", "memory.swap.max", 0, optional=True)
                jail._write("", "pids.max", max_processes)
                return jail
            v1 = _v1_bases()
            if v1 is None:
                return None
            jail = cls("v1", {controller: base / name for controller, base in v1.items()})
            for path in jail.dirs.values():
                path.mkdir()
            jail._write("memory", "memory.limit_in_bytes", memory_bytes)
            jail._write("memory", "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
            jail._write("pids", "pids.max", max_processes)
            return jail
        except OSError:
            return None

    def _write(self, controller: str, knob: str, value: int, optional: bool = False) -> None:
        try:
            (self.dirs[controller] / knob).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a child writes "0" into to enter the jail (before exec)."""
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(pid) for pid in (path / "cgroup.procs").read_text().split())
        return found

    def kill_all(self, rounds: int = 50) -> bool:
        """SIGKILL every process in the jail, repeatedly (a fork bomb refills it); True if empty."""
        kill_file = self.dirs.get("", Path("/nonexistent")) / "cgroup.kill"
        for _ in range(rounds):
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        return not self.pids()

    def oom_kills(self) -> int:
        """How many processes of the job the kernel killed for exceeding the memory limit."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        directory = self.dirs["" if self.version == "v2" else "memory"]
        with contextlib.suppress(OSError, ValueError):
            for line in (directory / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def peak_memory_bytes(self) -> int | None:
        name = "memory.peak" if self.version == "v2" else "memory.max_usage_in_bytes"
        directory = self.dirs["" if self.version == "v2" else "memory"]
        with contextlib.suppress(OSError, ValueError):
            return int((directory / name).read_text())
        return None

    def remove(self) -> None:
        """Kill what is left and remove the group(s); retried briefly while exits settle."""
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def remove_owned_by(host: int) -> None:
    """Kill and remove every job group that process `host` made (its watchdog calls this)."""
    v2 = _v2_base()
    bases = {"": v2} if v2 is not None else (_v1_bases() or {})
    for controller, base in bases.items():
        for path in base.glob(f"{PREFIX}{host}-*"):
            Jail("v2" if v2 is not None else "v1", {controller: path}).remove()


def remove_leftovers() -> None:
    """Kill and remove job groups whose host process is gone (a crashed run left them)."""
    v2 = _v2_base()
    bases = {"": v2} if v2 is not None else (_v1_bases() or {})
    for controller, base in bases.items():
        for path in base.glob(PREFIX + "*"):
            owner = path.name[len(PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                Jail("v2" if v2 is not None else "v1", {controller: path}).remove()
