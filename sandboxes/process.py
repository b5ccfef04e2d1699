"""The process backend: the embedded default when no Docker engine is reachable.

Where bubblewrap works (see `sandboxes.bwrap`), every process of a job runs in a sandbox
built from nothing: new mount, PID, network, IPC, UTS and cgroup namespaces (and a user
namespace when not root); no capability; a read-only tree of /usr, the loader's /etc files and
the interpreter's prefix, and nothing else of the host (no /root, /home, /var, /run, project,
archive, Docker or database socket: a job given the LLM gateway gets that one socket, at its
host path); a fresh /proc of its own PID namespace, with no host
procfs underneath to uncover; a minimal /dev; a private /tmp; its own directory read-write
at /job. As root each process runs as its own unprivileged host uid (no account owns it);
otherwise as an unprivileged uid of its user namespace. A judged job (`Job.candidate`) is two
such sandboxes, one per process, with different uids and directories (the judge's 0700 to
the judge's uid): the only thing they share is the socket on fd CHANNEL_FD, so the candidate
cannot see the judge's files, memory, environment or process, let alone signal or trace it,
and it cannot write the result file (read from the judge's directory only). The privilege
separation follows OpenSSH's privsep: the privileged monitor (the judge) and the unprivileged
child share nothing but a socket.

Also, with or without bubblewrap: rlimits (address space, CPU time, processes, file size,
open files); a scrubbed environment; a per-job cgroup (see `sandboxes.cgroup`) bounding the
memory and process count of the whole tree and listing every process it holds; the timeout
kills all of it. A job dies with the process that started it: bwrap's --die-with-parent, and
PR_SET_PDEATHSIG on each process the backend starts (a SIGKILLed `clade run` leaves no job
running; its cgroup is removed by the next sandbox opened on the host).

What it does not guarantee: no seccomp filter, so the whole kernel's system-call surface is
reachable (a kernel exploit is out of scope; the docker backend adds a seccomp profile); the
job reads the host's /usr and interpreter (not secret, but visible); without a writable
cgroup memory is bounded per process only, and files are bounded in size, not number (the
disk bounds a flood of small files); `Job.packages` are not installed (the host interpreter
must have them); a GPU job gets the leased /dev/nvidiaN nodes (minor number = nvidia-smi
index) and the driver's shared nodes.

As root with a writable cgroup, jobs without GPUs or the LLM gateway run instead in a warm pool
(sandboxes.bwrap_pool): long-lived bubblewrap sandboxes of the same tree whose PID 1 is the
docker backend's job server and fork-server, so each Python job is a fork of a warm interpreter
under its own uid, directory and limits (`warm=False` turns it off). A judged job still gets a
sandbox per side: two warm ones, joined only by the channel the host hands each of them (never
one sandbox for both, where the candidate would share the judge's PID namespace).

Where bubblewrap cannot run (not installed; not root and no unprivileged user namespaces),
the backend is *weak* (`ProcessSandbox.weakness` says why, `auto` refuses hostile work without
--allow-weak-sandbox): the job runs as the host user with the host's files; as root, util-linux
`unshare` still gives it PID, mount and network namespaces.
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

from sandboxes import bwrap, cgroup
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
_PR_SET_PDEATHSIG = 1
_MARK = "CLADE_SANDBOX_JOB"
_UNSHARE = ("--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--", "/bin/sh", "-c", '"$@"', "sh")


def _namespace_wrapper() -> list[str] | None:
    """The weak fallback's `unshare` prefix (PID/mount/network namespaces, root only), if usable."""
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


_Started = tuple[subprocess.Popen[bytes], _TailBuffer, _TailBuffer]


class ProcessSandbox(Sandbox):
    name = "process"

    def __init__(
        self,
        python: str | None = None,
        gpus: GpuLeases | None = None,
        bubblewrap: bool = True,
        warm: bool = True,
        fork_server: bool = True,
    ) -> None:
        """`bubblewrap=False` forces the weak fallback (what a host without bwrap gets); `warm=False`
        gives every job its own sandboxes and interpreters (no warm pool, see sandboxes.bwrap_pool);
        `fork_server=False` keeps the warm pool but execs every job in it."""
        self.python = python or sys.executable
        self.gpus = gpus
        self.jail, detail = bwrap.mode() if bubblewrap else (None, "bubblewrap not used (asked for)")
        self.jail_detail = detail
        self.weakness: str | None = None if self.jail else detail
        """Why this backend cannot hold hostile code here, or None when bubblewrap isolates it."""
        self._bwrap = bwrap.find() or "bwrap"
        self._roots = bwrap.interpreter_roots(self.python)
        self.namespaces = None if self.jail else _namespace_wrapper()
        self.network_cut = (
            self.jail is not None
            or self.namespaces is not None
            or (sys.platform.startswith("linux") and os.geteuid() == 0)
        )
        self.cgroup = cgroup.available()
        if self.cgroup:
            cgroup.remove_leftovers()
        self._pool = None
        if warm and self.jail == "root" and self.cgroup:
            from sandboxes.bwrap_pool import WarmPool, usable

            if usable(self.python):
                self._pool = WarmPool(self._bwrap, self.python, self._roots, fork_server)
        self.warm = self._pool is not None
        self.fork_server = self.warm and fork_server
        """Single-process jobs without GPUs or the LLM gateway run in warm job-server sandboxes
        (sandboxes.bwrap_pool); judged jobs keep a sandbox per process."""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def describe(self) -> dict[str, Any]:
        root = os.geteuid() == 0
        facts: dict[str, Any] = {
            "backend": self.name,
            "python": self.python,
            "isolation": self.jail_detail if self.jail else f"weak: {self.weakness}",
            "rlimits": ["address space", "cpu time", "file size", "open files"]
            + (["processes (per uid)"] if self.jail or not root else []),
            "cgroup": f"{self.cgroup}: memory and process count of the whole job"
            if self.cgroup
            else "none writable: memory is bounded per process only"
            + ("" if self.jail or not root else "; process count unbounded (root ignores RLIMIT_NPROC)"),
            "network": "cut (network namespace)" if self.network_cut else "not cut (needs root or bubblewrap)",
            "lifetime": "dies with its host process (bwrap --die-with-parent, PR_SET_PDEATHSIG)",
        }
        if self.warm:
            facts["warm_pool"] = (
                "single-process jobs without GPUs or the LLM gateway run in warm bubblewrap sandboxes whose job server "
                "(root with 6 capabilities, as in a docker container) forks each Python job from an interpreter "
                "that imported numpy: uid 65533 (judge) / 65534, fresh directories, all processes killed after"
            )
        if self.jail:
            uids = "a fresh unprivileged host uid per process" if self.jail == "root" else "in-namespace uids"
            facts["processes"] = "own PID namespace per process: host processes invisible, leftovers killed"
            facts["user"] = f"{uids}; no capabilities; judge and candidate in separate sandboxes"
            facts["host_files"] = "none but read-only /usr, loader files and the interpreter; fresh /proc, /dev, /tmp"
        else:
            facts["processes"] = (
                "own PID namespace: host processes invisible, leftovers killed"
                if self.namespaces
                else "shares the host's process table (needs bubblewrap, or root and util-linux unshare)"
            )
            facts["user"] = "the host user" + (" (root)" if root else "")
            facts["host_files"] = "readable and writable as the host user: not for hostile code"
        facts["packages"] = "not installed: the host interpreter's packages are used"
        return facts

    def prepare(self, job: Job, count: int) -> None:
        if self._pool is not None and self._pooled(job):  # a judged job takes a sandbox per side
            self._pool.prefill(job.limits, count * (2 if job.candidate is not None else 1))

    def _pooled(self, job: Job) -> bool:
        """Whether the warm pool runs this job (see sandboxes.bwrap_pool for why only these)."""
        return not job.limits.gpus and job.gateway_socket is None

    def run(self, job: Job) -> Outcome:
        refusal = bad_path(job.files) or (bad_path(job.candidate.files) if job.candidate else None)
        if refusal is not None:
            return Outcome.refused(self.name, refusal)
        if self._pool is not None and self._pooled(job):
            return self._pool.run(job)
        base = Path(tempfile.mkdtemp(prefix="clade-job-"))  # 0700: only the host side walks it
        jail = cgroup.Jail.create(job.limits.memory_mb * 1024 * 1024, job.limits.processes + 4) if self.cgroup else None
        try:
            if not job.limits.gpus:
                return self._execute(job, base, jail, [])
            leases = self.gpus or host_leases()
            with leases.lease(job.limits.gpus) as devices:
                return self._execute(job, base, jail, devices)
        finally:
            if jail is not None:
                jail.remove()
            shutil.rmtree(base, ignore_errors=True)

    def _prepare(self, base: Path, role: str, files: Mapping[str, bytes], ns_uid: int) -> tuple[Path, int]:
        """The role's directory holding `files`, owned by the uid it runs as; (directory, uid)."""
        workdir = base / role
        workdir.mkdir(mode=0o700)
        _place(workdir, files)
        uid = bwrap.pick_uid() if self.jail == "root" else ns_uid
        if self.jail is not None:
            etc = base / f"{role}-etc"
            etc.mkdir()
            passwd, group = bwrap.passwd_lines(uid)
            for name, text in (("passwd", passwd), ("group", group)):
                (etc / name).write_text(text)
                (etc / name).chmod(0o644)  # whatever the host's umask: the job's uid reads them
        if self.jail == "root":
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, uid, uid, follow_symlinks=False)
        return workdir, uid

    def _command(self, command: Sequence[str], spec: bwrap.Spec | None) -> list[str]:
        command = [self.python if arg == PYTHON else arg for arg in command]
        if command and command[0] == self.python:
            command[1:1] = ["-E", "-s"]  # ignore PYTHON* variables and the user's site
        if spec is not None and self.jail is not None:
            return bwrap.command(self._bwrap, self.jail, spec, command)
        if self.namespaces:
            command = [*self.namespaces, *command]
        return command

    def _execute(self, job: Job, base: Path, jail: cgroup.Jail | None, devices: list[str]) -> Outcome:
        mark = uuid.uuid4().hex
        jailed = self.jail is not None
        workdir, judge_uid = self._prepare(base, "judge", job.files, bwrap.JUDGE_NS_UID)
        home = bwrap.WORKDIR if jailed else str(workdir)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": "/tmp" if jailed else home,
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
        if job.gateway_socket is not None:  # the LLM gateway (coding-agent tasks): the judge's only host socket
            env[GATEWAY_ENV] = job.gateway_socket  # bound at the same path inside bubblewrap

        def spec(directory: Path, uid: int, gateway: bool) -> bwrap.Spec:
            return bwrap.Spec(
                workdir=directory,
                uid=uid,
                passwd=base / f"{directory.name}-etc" / "passwd",
                gpus=devices,
                gateway_socket=job.gateway_socket if gateway else None,
                python_roots=self._roots,
            )

        command = self._command(job.command, spec(workdir, judge_uid, True))
        judge_end, candidate_end = socket.socketpair() if job.candidate is not None else (None, None)
        candidate: _Started | None = None
        started = time.monotonic()
        try:
            if job.candidate is not None and candidate_end is not None:
                candidate_dir, candidate_uid = self._prepare(
                    base, "candidate", job.candidate.files, bwrap.CANDIDATE_NS_UID
                )
                candidate_home = bwrap.WORKDIR if jailed else str(candidate_dir)
                candidate_env = {
                    # never the judge's task variables (nor the gateway), as in the docker job server
                    **{key: value for key, value in env.items() if key != GATEWAY_ENV and key not in job.env},
                    "HOME": candidate_home,
                    "TMPDIR": "/tmp" if jailed else candidate_home,
                    CHANNEL_ENV: str(CHANNEL_FD),
                }
                candidate_command = self._command(job.candidate.command, spec(candidate_dir, candidate_uid, False))
                candidate = self._spawn(
                    candidate_command, candidate_dir, candidate_env, job, jail, devices, candidate_end
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
        wrapped = jailed or self.namespaces
        if wrapped and exit_code > 128 and exit_code - 128 in signal.valid_signals():
            exit_code = -(exit_code - 128)  # bwrap's (or the namespace sh's) init reports a signal as 128+N
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
    ) -> _Started:
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
            cwd=cwd if self.jail is None else "/",
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
        cut_network = self.network_cut and not self.namespaces and self.jail is None
        procs_files = jail.procs_files() if jail is not None else []
        # bwrap and its init count against RLIMIT_NPROC only as root (where it is not enforced);
        # in a user namespace they share the job's uid, so the job gets two more
        nproc = limits.processes + (2 if self.jail == "userns" else 0)
        host = os.getpid()

        def apply() -> None:  # runs in the child between fork and exec
            libc = ctypes.CDLL(None, use_errno=True)
            # Dies with the thread that started it (the one waiting on it): a SIGKILLed host
            # takes its jobs along. bwrap passes this on with --die-with-parent.
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != host:  # the host died before the line above: no orphan job
                os._exit(122)
            for procs in procs_files:  # enter the cgroup first: everything after is bounded
                with open(procs, "w") as handle:
                    handle.write("0")
            memory = limits.memory_mb * 1024 * 1024
            if bounded_address_space:  # CUDA maps far more address space than it uses: the cgroup bounds GPU jobs
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            file_size = limits.file_size_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cut_network and libc.unshare(_CLONE_NEWNET) != 0:
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
