"""The process backend: the embedded default when no Docker engine is reachable.

Each job runs in a private temporary directory, in a new session and process group, under
rlimits (address space, CPU time, processes, file size, open files), with a scrubbed
environment; the timeout kills the whole group and any process still carrying the job's mark.
As root it also cuts the network (a fresh network namespace).

What it cannot guarantee (use the docker backend for hostile code): the job runs with the
host's user and interpreter, so it can read whatever that user can read; a process that
leaves the group and scrubs its environment can outlive the job; as root, RLIMIT_NPROC is not
enforced by the kernel; a flood of small files is bounded only by the disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from sandboxes.base import PYTHON, Job, Outcome, Sandbox, read_result

_CLONE_NEWNET = 0x40000000
_MARK = "CLADE_SANDBOX_JOB"
_RESULT_LIMIT = 64 * 1024 * 1024


def _can_unshare_network() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


class _TailBuffer:
    """Keeps the last `limit` bytes of a stream, draining it to the end."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._data = bytearray()
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := self._stream.read(65536):
            self._data += chunk
            if len(self._data) > self._limit:
                excess = len(self._data) - self._limit
                del self._data[:excess]
                self.dropped += excess

    def text(self) -> str:
        self._thread.join(timeout=2.0)
        prefix = f"[... {self.dropped} bytes dropped ...]\n" if self.dropped else ""
        return prefix + self._data.decode("utf-8", errors="replace")


class ProcessSandbox(Sandbox):
    name = "process"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self.network_cut = _can_unshare_network()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "python": self.python,
            "limits": ["address space", "cpu time", "processes", "file size", "open files"],
            "network": "cut (network namespace)" if self.network_cut else "not cut (needs root)",
            "host_files": "readable by the job (runs as the host user)",
        }

    def run(self, job: Job) -> Outcome:
        workdir = Path(tempfile.mkdtemp(prefix="clade-job-"))
        try:
            for rel, content in job.files.items():
                target = workdir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            return self._execute(job, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, job: Job, workdir: Path) -> Outcome:
        mark = uuid.uuid4().hex
        command = [self.python if arg == PYTHON else arg for arg in job.command]
        if command and command[0] == self.python:
            command[1:1] = ["-E", "-s"]  # ignore PYTHON* variables and the user's site
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            **job.env,
            _MARK: mark,
        }
        started = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=self._limiter(job),
        )
        assert proc.stdout is not None and proc.stderr is not None
        out = _TailBuffer(proc.stdout, job.limits.output_bytes)
        err = _TailBuffer(proc.stderr, job.limits.output_bytes)
        status, usage, timed_out = _wait(proc.pid, job.timeout_s)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        _kill_group(proc.pid)
        _kill_marked(mark)
        stdout, stderr = out.text(), err.text()
        result, result_error = read_result(_read_regular(workdir / job.result_file), _RESULT_LIMIT)
        exit_code = proc.returncode
        out_of_memory = "MemoryError" in stderr[-4000:] or exit_code == -signal.SIGSEGV
        return Outcome(
            backend=self.name,
            exit_code=None if timed_out else exit_code,
            timed_out=timed_out,
            out_of_memory=out_of_memory and not timed_out,
            result=result if not timed_out else None,
            result_error=result_error,
            stdout=stdout,
            stderr=stderr,
            wall_s=wall,
            peak_memory_mb=usage.ru_maxrss / 1024 if usage else None,
        )

    def _limiter(self, job: Job) -> Any:
        limits = job.limits
        cpu_seconds = int(job.timeout_s) + 2
        cut_network = self.network_cut

        def apply() -> None:  # runs in the child between fork and exec
            memory = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            file_size = limits.file_size_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cut_network:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.unshare(_CLONE_NEWNET) != 0:
                    os._exit(121)

        return apply


def _wait(pid: int, timeout_s: float) -> tuple[int, Any, bool]:
    """Wait for `pid`; on timeout kill its process group. Returns (status, rusage, timed_out)."""
    box: dict[str, Any] = {}

    def reap() -> None:
        _, status, usage = os.wait4(pid, 0)
        box["status"], box["usage"] = status, usage

    reaper = threading.Thread(target=reap, daemon=True)
    reaper.start()
    reaper.join(timeout_s)
    timed_out = reaper.is_alive()
    if timed_out:
        _kill_group(pid)
        reaper.join()
    return box["status"], box.get("usage"), timed_out


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_marked(mark: str) -> None:
    """Kill processes that left the job's group but still carry its environment mark."""
    needle = f"{_MARK}={mark}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _read_regular(path: Path) -> bytes | None:
    """Read the result file without following links out of the working directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(_RESULT_LIMIT + 1)
