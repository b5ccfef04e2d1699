"""The process backend: the embedded default when no Docker engine is reachable.

Each job runs in a private temporary directory, in a new session and process group, under
rlimits (address space, CPU time, processes, file size, open files), with a scrubbed
environment; the timeout kills the whole group, every process in the job's cgroup, and any
process still carrying the job's mark. Where the host allows it, more:

- a per-job cgroup (see `sandboxes.cgroup`) bounds the memory and process count of the
  whole tree and finds every process the job started, even those that left its session;
- as root, the job runs in fresh PID, mount and network namespaces (util-linux `unshare`):
  no network, no view of (or signal to) any host process, no /proc/<pid>/environ of the
  host to read keys from; when the job ends, the kernel kills everything left in its PID
  namespace. A small `sh` is the namespace's init so the job is not PID 1 (PID 1 ignores
  default-action signals); a job killed by signal N then reports exit 128+N, mapped back here.

What it cannot guarantee (use the docker backend for hostile code): the job runs with the
host's user and interpreter, so it can read and write whatever that user can (as root:
every file, the archive database and the user's home included); without root it shares the
host's network and process table; without a writable cgroup, RLIMIT_NPROC is all that bounds
processes (not enforced for root) and RLIMIT_AS is per process; files are bounded in size,
not in number, so the disk bounds a flood of small files; `Job.packages` are not installed
(the host's interpreter must already have them).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from sandboxes import cgroup
from sandboxes.base import (
    CHANNEL_ENV,
    CHANNEL_FD,
    GATEWAY_ENV,
    PYTHON,
    RESULT_LIMIT_BYTES,
    Job,
    Outcome,
    Sandbox,
    bad_path,
    read_result,
)
from sandboxes.gpus import GpuLeases, host_leases

_CLONE_NEWNET = 0x40000000
_MARK = "CLADE_SANDBOX_JOB"
_UNSHARE = ("--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--", "/bin/sh", "-c", '"$@"', "sh")


def _namespace_wrapper() -> list[str] | None:
    """The `unshare` prefix that puts a job in its own PID/mount/network namespaces, if usable."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    tool = shutil.which("unshare")
    return [tool, *_UNSHARE] if tool and os.path.exists("/bin/sh") else None


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

    def __init__(self, python: str | None = None, gpus: GpuLeases | None = None) -> None:
        self.python = python or sys.executable
        self.gpus = gpus
        self.namespaces = _namespace_wrapper()
        self.network_cut = self.namespaces is not None or (sys.platform.startswith("linux") and os.geteuid() == 0)
        self.cgroup = cgroup.available()
        if self.cgroup:
            cgroup.remove_leftovers()

    def describe(self) -> dict[str, Any]:
        root = os.geteuid() == 0
        return {
            "backend": self.name,
            "python": self.python,
            "rlimits": ["address space", "cpu time", "file size", "open files"]
            + ([] if root else ["processes (per user)"]),
            "cgroup": f"{self.cgroup}: memory and process count of the whole job"
            if self.cgroup
            else "none writable: memory is bounded per process only"
            + ("; process count unbounded (root ignores RLIMIT_NPROC)" if root else ""),
            "network": "cut (network namespace)" if self.network_cut else "not cut (needs root)",
            "processes": "own PID namespace: host processes invisible, leftovers killed"
            if self.namespaces
            else "shares the host's process table (needs root and util-linux unshare)",
            "host_files": "readable and writable as the host user"
            + (" (root: every file)" if root else "")
            + ": use the docker backend for hostile code",
            "packages": "not installed: the host interpreter's packages are used",
        }

    def run(self, job: Job) -> Outcome:
        refusal = bad_path(job.files) or (bad_path(job.candidate.files) if job.candidate else None)
        if refusal is not None:
            return Outcome.refused(self.name, refusal)
        workdir = Path(tempfile.mkdtemp(prefix="clade-job-"))
        candidate_dir = Path(tempfile.mkdtemp(prefix="clade-candidate-")) if job.candidate else None
        jail = cgroup.Jail.create(job.limits.memory_mb * 1024 * 1024, job.limits.processes + 2) if self.cgroup else None
        try:
            _place(workdir, job.files)
            if job.candidate is not None and candidate_dir is not None:
                _place(candidate_dir, job.candidate.files)
            if not job.limits.gpus:
                return self._execute(job, workdir, candidate_dir, jail, [])
            leases = self.gpus or host_leases()
            with leases.lease(job.limits.gpus) as devices:
                return self._execute(job, workdir, candidate_dir, jail, devices)
        finally:
            if jail is not None:
                jail.remove()
            shutil.rmtree(workdir, ignore_errors=True)
            if candidate_dir is not None:
                shutil.rmtree(candidate_dir, ignore_errors=True)

    def _command(self, command: Sequence[str]) -> list[str]:
        command = [self.python if arg == PYTHON else arg for arg in command]
        if command and command[0] == self.python:
            command[1:1] = ["-E", "-s"]  # ignore PYTHON* variables and the user's site
        if self.namespaces:
            command = [*self.namespaces, *command]
        return command

    def _execute(
        self, job: Job, workdir: Path, candidate_dir: Path | None, jail: cgroup.Jail | None, devices: list[str]
    ) -> Outcome:
        mark = uuid.uuid4().hex
        command = self._command(job.command)
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
        # Only the GPUs leased to this job are visible; a job that asked for none sees none.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        if job.limits.gpus and not devices:
            env["CLADE_GPU_MISSING"] = (
                f"asked for {job.limits.gpus} GPU(s); this host has {len((self.gpus or host_leases()).devices)}"
            )
        if job.gateway_socket is not None:  # the LLM gateway (coding-agent tasks): its host path
            env[GATEWAY_ENV] = job.gateway_socket
        judge_end, candidate_end = socket.socketpair() if job.candidate is not None else (None, None)
        candidate: tuple[subprocess.Popen[bytes], _TailBuffer, _TailBuffer] | None = None
        started = time.monotonic()
        try:
            if job.candidate is not None and candidate_dir is not None and candidate_end is not None:
                candidate_env = {
                    **env,
                    "HOME": str(candidate_dir),
                    "TMPDIR": str(candidate_dir),
                    CHANNEL_ENV: str(CHANNEL_FD),
                }
                candidate = self._spawn(
                    self._command(job.candidate.command),
                    candidate_dir,
                    candidate_env,
                    job,
                    jail,
                    devices,
                    candidate_end,
                )
                candidate_end.close()
                env[CHANNEL_ENV] = str(CHANNEL_FD)
            proc, out, err = self._spawn(command, workdir, env, job, jail, devices, judge_end)
        except OSError as exc:
            if candidate is not None:
                _kill_group(candidate[0].pid)
                candidate[0].wait()
            return Outcome.refused(self.name, f"cannot start {exc.filename or command[0]!r}: {exc.strerror or exc}")
        finally:
            for end in (judge_end, candidate_end):
                if end is not None:
                    end.close()
        status, usage, timed_out = _wait(proc.pid, job.timeout_s, jail)
        proc.returncode = exit_code = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        _kill_group(proc.pid)
        if candidate is not None:  # the judge is done: its candidate (and all it started) goes too
            _kill_group(candidate[0].pid)
            candidate[0].wait()
        if jail is not None:
            jail.kill_all()
        _kill_marked(mark)
        if self.namespaces and exit_code > 128 and exit_code - 128 in signal.valid_signals():
            exit_code = -(exit_code - 128)  # the namespace's sh reports a signal as 128+N
        stdout, stderr = out.text(), err.text()
        candidate_stdout, candidate_stderr = (candidate[1].text(), candidate[2].text()) if candidate else ("", "")
        result, result_error = read_result(_read_regular(workdir / job.result_file), RESULT_LIMIT_BYTES)
        out_of_memory = (
            "MemoryError" in stderr[-4000:]
            or exit_code == -signal.SIGSEGV
            or (jail is not None and jail.oom_kills() > 0)
        )
        peak = jail.peak_memory_bytes() if jail is not None else None
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
            peak_memory_mb=peak / 2**20 if peak else (usage.ru_maxrss / 1024 if usage else None),
            candidate_stdout=candidate_stdout,
            candidate_stderr=candidate_stderr,
        )

    def _spawn(
        self,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        job: Job,
        jail: cgroup.Jail | None,
        devices: list[str],
        channel: socket.socket | None,
    ) -> tuple[subprocess.Popen[bytes], _TailBuffer, _TailBuffer]:
        """Start one of the job's processes in its own session; its end of the channel on fd 3."""
        limiter = self._limiter(job, jail, bounded_address_space=not devices)
        channel_fd = channel.fileno() if channel is not None else None

        def setup() -> None:  # between fork and exec: the channel end becomes CHANNEL_FD, then the limits
            if channel_fd is not None:
                # Popen's close_fds runs after this hook and would close fd 3, so the hook closes
                # every other descriptor itself (close_fds=False below).
                os.dup2(channel_fd, CHANNEL_FD)
                os.set_inheritable(CHANNEL_FD, True)  # dup2 onto itself keeps close-on-exec
                os.closerange(CHANNEL_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            limiter()

        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=channel_fd is None,
            preexec_fn=setup,
        )
        assert proc.stdout is not None and proc.stderr is not None
        return (
            proc,
            _TailBuffer(proc.stdout, job.limits.output_bytes),
            _TailBuffer(proc.stderr, job.limits.output_bytes),
        )

    def _limiter(self, job: Job, jail: cgroup.Jail | None, bounded_address_space: bool = True) -> Any:
        limits = job.limits
        cpu_seconds = int(job.timeout_s) + 2
        cut_network = self.network_cut and not self.namespaces
        procs_files = jail.procs_files() if jail is not None else []

        def apply() -> None:  # runs in the child between fork and exec
            for procs in procs_files:  # enter the cgroup first: everything after is bounded
                with open(procs, "w") as handle:
                    handle.write("0")
            memory = limits.memory_mb * 1024 * 1024
            if bounded_address_space:  # CUDA maps far more address space than it uses: the cgroup bounds GPU jobs
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


def _place(directory: Path, files: Mapping[str, bytes]) -> None:
    for rel, content in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _wait(pid: int, timeout_s: float, jail: cgroup.Jail | None) -> tuple[int, Any, bool]:
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
        if jail is not None:
            jail.kill_all()
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
    """Read the result file without following links out of the working directory.

    A symbolic link is refused (O_NOFOLLOW), and so is a hard link (a job running as the
    host's user could hard-link any file it can name into its directory), a FIFO or a device.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return None
        chunks, size = [], 0
        while size <= RESULT_LIMIT_BYTES and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
