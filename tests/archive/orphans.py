"""What a killed `clade` left running: every process it started, found without knowing how.

While `adopting()` is active this test process is a child subreaper (PR_SET_CHILD_SUBREAPER):
whatever a `clade` child started (sandbox jobs, job servers, warm pools, a double-forked
daemon) is re-parented to this process when `clade` dies, instead of to init. A leftover is
then any such adopted process still alive after a short grace for the kernel to deliver
SIGKILLs (PDEATHSIG, the PID namespace's end) and reap; and, for what left the tree some other
way, any process whose working directory, command line or environment names a path under the
runs' job directory (the TMPDIR the runs were given). Dead adopted processes are reaped here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first, then ppid), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return text[text.rfind(")") + 2 :].split()


def _describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        argv = "?"
    return f"{pid} ({argv.strip()[:200]})"


class Orphans:
    """The leftovers of processes this test started, and of the job directory `jobs`."""

    def __init__(self, jobs: Path) -> None:
        self.jobs = jobs
        self.me = os.getpid()
        self.before = set(self._children())
        """Children this process had before: not the runs' (fixtures, servers of other tests)."""

    def _children(self) -> list[int]:
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            fields = _stat(int(entry.name))
            if fields is not None and len(fields) > 1 and fields[1] == str(self.me):
                found.append(int(entry.name))
        return found

    def _adopted_alive(self) -> list[int]:
        """Adopted processes still running; the dead ones are reaped (they are our children now)."""
        alive = []
        for pid in self._children():
            if pid in self.before:
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped meanwhile (a Popen of ours) or not ours after all
                continue
            if not done:
                alive.append(pid)
        return alive

    def _naming_jobs(self) -> list[int]:
        """Processes whose cwd, command line or environment names a path under `jobs`."""
        needle, found = f"{self.jobs}/".encode(), []
        for entry in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError):
                cwd = os.readlink(entry / "cwd").encode() + b"/"
                named = cwd.startswith(needle) or needle in (entry / "cmdline").read_bytes()
                if named or needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
        return [pid for pid in found if (_stat(pid) or ["Z"])[0] != "Z"]

    def left(self, grace_s: float = 3.0) -> list[str]:
        """Processes of the runs still alive once `grace_s` has passed (at once when none are)."""
        deadline = time.monotonic() + grace_s
        while True:
            left = sorted(set(self._adopted_alive()) | set(self._naming_jobs()))
            if not left or time.monotonic() >= deadline:
                return [_describe(pid) for pid in left]
            time.sleep(0.05)

    def kill(self) -> None:
        """Never leave a leftover to the next test: kill and reap whatever is still there."""
        for pid in set(self._adopted_alive()) | set(self._naming_jobs()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self._adopted_alive() and time.monotonic() < deadline:
            time.sleep(0.05)


def _subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@contextlib.contextmanager
def adopting(jobs: Path) -> Iterator[Orphans]:
    """Be the subreaper of every process started inside; kill what is left at the end."""
    _subreaper(True)
    orphans = Orphans(jobs)
    try:
        yield orphans
    finally:
        _subreaper(False)
        orphans.kill()
