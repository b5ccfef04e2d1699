"""The job server: PID 1 of every sandbox container, speaking the host's protocol on stdio.

Why a server inside the container rather than `docker exec` per job: exec needs a new
process in the container's cgroup (impossible once a fork bomb fills its pids limit) and costs
a runc round trip per job, while a long-lived PID 1 reached over the attach stream costs only
the job's own fork and exec. That is what lets a warm pool run a job within a few milliseconds
of a bare interpreter start; a fresh container is the same server answering one request.

Privilege separation (after OpenSSH's privsep monitor): the server is the monitor. It runs as
root inside the container with only the capabilities it needs to start children under two
unprivileged uids and clean up after them (SETUID, SETGID, KILL, CHOWN, FOWNER, DAC_OVERRIDE;
no-new-privileges, read-only root, no network), parses nothing but the host's input, and runs
no job code. Every child drops to its uid with no capabilities before exec: a plain job and a
judged job's candidate run as CANDIDATE_UID, a judged job's judge as JUDGE_UID in its own 0700
directory (WORK), the candidate in a second one (CANDIDATE_WORK). The two are connected only by
a socketpair on fd 3. A child can neither ptrace the server nor open /proc/1/{fd,mem,environ}
(it is non-dumpable and another uid), nor signal it (the kernel delivers no signal to a PID
namespace's init from inside unless init handles it, SIGKILL included). The jobs' stdio are
pipes to the server, never the container's streams, so they cannot write into the protocol.
The host still trusts nothing it receives: results are re-parsed strictly under a size limit
and the host enforces its own deadline.

Protocol (host to server, on stdin): a line with the header's byte length, the JSON header
(`command`, `env`, `timeout_s`, `files` as [name, size] pairs, `result_file`, limits, `last`,
and for a judged job `candidate` = {`command`, `files`}), then the files' bytes in order (the
judge's, then the candidate's). A judged job may instead be split over two servers, one per
side, each in its own sandbox (the process backend's warm pool does so: its servers cannot give
the two sides PID namespaces of their own within one sandbox): the header says `side` (`judge`
or `candidate`), the one process runs as that side's uid, and its end of the channel comes from
the host over the pass socket ($CLADE_PASS_FD, a SOCK_SEQPACKET socket: a message "F" carrying
the descriptor); a message "S" there ends a candidate side, as the judge's exit ends a judged
job here. Server to host, on stdout: `CLADE-REPLY <length>`, a JSON reply,
then `result_size` raw bytes of the result file when the reply names a size. After a reply the
server has killed every other process in the container and emptied the writable directories,
ready for the next job unless `last` was set.

This file runs inside the image's interpreter with the standard library only, via `-c`, so
the image need not be rebuilt when it changes.
"""

from __future__ import annotations

import array
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import stat
import sys
import time
from typing import Any, BinaryIO

WORK = "/work"
CANDIDATE_WORK = "/candidate"
SCRATCH = (WORK, CANDIDATE_WORK, "/tmp", "/dev/shm")
#: Every job process's umask: what it creates anywhere (/dev/shm too) is its uid's alone.
UMASK = 0o077
JUDGE_UID = 65533
CANDIDATE_UID = 65534
JOB_UIDS = (JUDGE_UID, CANDIDATE_UID)
#: A judged job's private temporary directories (its processes' $TMPDIR), one per uid, 0700.
PRIVATE_TMP = {JUDGE_UID: "/tmp/judge", CANDIDATE_UID: "/tmp/candidate"}
CHANNEL_FD = 3
CHANNEL_ENV = "CLADE_CHANNEL_FD"
PASS_ENV = "CLADE_PASS_FD"
"""The server's environment variable naming its pass socket, where there is one (see Protocol)."""
_PASS: socket.socket | None = None
REPLY_TAG = b"CLADE-REPLY"
OOM_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("host closed the stream mid-request")
    return data


def _oom_kills() -> int:
    for path in OOM_COUNTERS:
        try:
            with open(path) as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _kill_everyone(groups: list[int]) -> None:
    """Kill every job process in the container and reap them.

    Only as PID 1 (inside the container's PID namespace) is `kill(-1)` confined to the job;
    anywhere else it would reach the whole host, so there only the jobs' groups are killed.
    With a fork-server to keep, the kill comes from a helper under each job uid: `kill(-1)`
    there reaches every process of that uid at once (no fork escapes it) and nothing of root's.
    """
    if os.getpid() == 1 and _FORK_SERVER is not None and _FORK_SERVER.alive() and _kill_by_uid():
        return
    if _FORK_SERVER is not None:
        _FORK_SERVER.lost()  # the root-wide kill below takes it too
    for _ in range(1000):
        for target in [-1] if os.getpid() == 1 else [-group for group in groups]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _kill_by_uid() -> bool:
    """Kill and reap every process of the job uids; False when that cannot be done here."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for uid in JOB_UIDS:
            try:
                helper = os.fork()
            except OSError:  # the pids limit is full: only the root-wide kill works now
                return False
            if helper == 0:
                try:
                    os.setresuid(uid, uid, uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(helper, 0)
        _reap_exited()
        if not _job_processes():
            return True
        time.sleep(0.001)
    return False


def _reap_exited() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if _FORK_SERVER is not None and pid == _FORK_SERVER.pid:
            _FORK_SERVER.pid = None  # reaped: its pid is free for reuse, never to be killed
            _FORK_SERVER.lost()


def _job_processes() -> list[int]:
    """Pids of processes under a job uid (zombies included: they are not reaped yet)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) in JOB_UIDS:
                            found.append(int(entry))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


def _wipe(directory: str) -> bool:
    """Empty a writable directory the jobs may have littered; True when it is empty after.

    As root with DAC_OVERRIDE and FOWNER no mode or sticky bit a job sets stops the removal,
    and `rmtree` works on file descriptors, so a job's symlinks lead nowhere.
    """
    if not os.path.isdir(directory):
        return True
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # reported below
    try:
        return not any(True for _ in os.scandir(directory))
    except OSError:
        return False


def _own(path: str, uid: int, mode: int) -> None:
    if os.getuid() == 0:
        os.chown(path, uid, uid, follow_symlinks=False)
    os.chmod(path, mode)  # a path the server made itself, before any job ran: no link to follow


def _place_files(stream: BinaryIO, base: str, files: list[list[Any]], uid: int) -> None:
    """Write the job's files under `base`, owned by the uid that will run there."""
    _own(base, uid, 0o700)
    for name, size in files:
        parts = name.split("/")
        if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"bad file name {name!r}")
        content = _read_exact(stream, int(size))
        parent = base
        for part in parts[:-1]:  # nothing runs yet, so no job can race these
            parent = os.path.join(parent, part)
            if not os.path.isdir(parent):
                os.mkdir(parent, 0o755)
                _own(parent, uid, 0o755)
        fd = os.open(os.path.join(base, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            if os.getuid() == 0:
                os.fchown(fd, uid, uid)
            handle.write(content)


def _open_result(name: str) -> tuple[int | None, str | None]:
    """The result file, opened without following any link a job planted on the way."""
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return None, f"bad result file name {name!r}"
    directory = os.open(WORK, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        return None, "wrote no result file"
    except OSError as exc:
        return None, f"result file unreadable: {exc.strerror}"
    finally:
        os.close(directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO, a directory, a device
        os.close(fd)
        return None, "result file is not a regular file"
    return fd, None


class _Tail:
    """The last `limit` bytes of one of the job's output streams."""

    def __init__(self, limit: int) -> None:
        self.limit, self.data, self.dropped = limit, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            excess = len(self.data) - self.limit
            del self.data[:excess]
            self.dropped += excess

    def encoded(self) -> str:
        return base64.b64encode(bytes(self.data)).decode()


class _Child:
    """One started process of the job: its pid, pidfd, output tails and, once reaped, status."""

    def __init__(self, pid: int, out: _Tail, err: _Tail, pipes: tuple[int, int]) -> None:
        self.pid, self.out, self.err = pid, out, err
        self.pipes = {pipes[0]: out, pipes[1]: err}
        """The output pipes still open, each with its tail; closed at EOF and taken out."""
        self.pidfd = os.pidfd_open(pid)
        self.status: int | None = None
        self.usage: Any = None

    def reap(self) -> None:
        if self.status is None:
            _, self.status, self.usage = os.wait4(self.pid, 0)

    def exit_code(self) -> int | None:
        return None if self.status is None else os.waitstatus_to_exitcode(self.status)


def _spawn(
    header: dict[str, Any], argv: list[str], cwd: str, env: dict[str, str], uid: int, channel: int | None
) -> _Child:
    """Fork and exec one process of the job: its own session, uid, limits, stdio pipes."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, low = os.pipe()
    report_w = fcntl.fcntl(low, fcntl.F_DUPFD_CLOEXEC, 64)  # above every fd the child moves
    os.close(low)
    file_size, open_files = int(header["file_size"]), int(header["open_files"])
    pid = os.fork()
    if pid == 0:  # the child: nothing here may return into the server's code
        try:
            os.setsid()
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            keep = 3
            if channel is not None:
                os.dup2(channel, CHANNEL_FD)
                os.set_inheritable(CHANNEL_FD, True)  # dup2 onto itself keeps close-on-exec
                keep = CHANNEL_FD + 1
            os.closerange(keep, report_w)
            os.closerange(report_w + 1, 1 << 16)
            for name in ("SIGPIPE", "SIGXFSZ", "SIGINT"):  # Python's interpreter ignores these
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            if os.getuid() == 0:  # capabilities go with the uid: the child keeps none
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.umask(UMASK)
            try:  # the job, not the server, is the one the kernel's OOM killer should pick
                with open("/proc/self/oom_score_adj", "w") as handle:
                    handle.write("1000")
            except OSError:
                pass
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # reported to the server, then gone
            try:
                os.write(report_w, f"cannot start {argv[0]!r}: {getattr(exc, 'strerror', None) or exc}".encode())
            finally:
                os._exit(127)
    os.close(out_w)
    os.close(err_w)
    os.close(report_w)
    failure = b""
    while chunk := os.read(report_r, 4096):  # EOF at exec (close-on-exec) or at the child's exit
        failure += chunk
    os.close(report_r)
    return _started(pid, failure, out_r, err_r, header)


def _started(pid: int, failure: bytes, out_r: int, err_r: int, header: dict[str, Any]) -> _Child:
    """The child the job's process became, or (when it reported a failure before running) OSError."""
    if failure:
        os.waitpid(pid, 0)
        os.close(out_r)
        os.close(err_r)
        raise OSError(failure.decode(errors="replace"))
    limit = int(header["output_bytes"])
    return _Child(pid, _Tail(limit), _Tail(limit), (out_r, err_r))


class _ForkServer:
    """The job server's handle on the fork-server (`sandboxes.forkserver`), started at most once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pid: int | None = None
        self.control: socket.socket | None = None
        self.ready = False
        self.starts = 0

    def start(self) -> None:
        """Start it as root in its own session; it imports its modules in the background."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                os.chdir("/")  # nowhere a job's files are: its imports come from the image only
                null = os.open("/dev/null", os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(child.fileno(), 3)
                os.set_inheritable(3, True)
                os.closerange(4, 1 << 16)
                os.execv(sys.executable, [sys.executable, "-I", "-c", self.source])
            finally:
                os._exit(127)
        child.close()
        self.pid, self.control = pid, parent
        self.starts += 1

    def alive(self) -> bool:
        return self.control is not None

    def lost(self) -> None:
        """It died, was killed or stopped answering: gone for good; exec until it is started again."""
        if self.control is not None:
            self.control.close()
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.control, self.ready, self.pid = None, False, None

    def usable(self, argv: list[str], env: dict[str, str]) -> bool:
        """Whether this command is a plain `python3` run it can carry, and it is up.

        An interpreter setting in the environment it does not apply to a fork (PYTHONHASHSEED,
        PYTHONWARNINGS, ...) sends the job to exec instead.
        """
        plain = len(argv) >= 2 and argv[0] == "python3"
        plain = plain and ((argv[1] in ("-c", "-m") and len(argv) >= 3) or not argv[1].startswith("-"))
        plain = plain and all(not key.startswith("PYTHON") or key in FORKED_PYTHON_ENV for key in env)
        if not plain:
            return False
        if self.control is None and self.starts < RESTARTS:  # lost to a root-wide kill or the OOM killer
            self.start()
        if self.control is None:
            return False
        if not self.ready:
            self.control.settimeout(30.0)  # its imports, once per container
            try:
                self.ready = self.control.recv(16) == b"ready"
            except OSError:
                self.ready = False
            if not self.ready:
                self.lost()
        return self.ready

    def spawn(
        self, header: dict[str, Any], argv: list[str], cwd: str, env: dict[str, str], uid: int, channel: int | None
    ) -> _Child:
        assert self.control is not None
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.control.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))])
        except OSError:
            self.lost()
            raise
        finally:
            theirs.close()
        with mine:
            mine.settimeout(10.0)
            pid = int(json.loads(mine.recv(4096))["pid"])  # reparented to this server by now
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            request = {"argv": argv, "cwd": cwd, "env": env, "uid": uid}
            request.update(file_size=int(header["file_size"]), open_files=int(header["open_files"]))
            fds = [out_w, err_w] + ([channel] if channel is not None else [])
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            mine.sendmsg([json.dumps(request).encode()], ancillary)
            os.close(out_w)
            os.close(err_w)
            failure = mine.recv(4096)  # empty at EOF: the job's process runs
        return _started(pid, failure, out_r, err_r, header)


_FORK_SERVER: _ForkServer | None = None
RESTARTS = 4
"""How often a container starts its fork-server before it runs every job by exec."""
FORKED_PYTHON_ENV = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
"""The interpreter's variables a forked job honours (`sandboxes.forkserver._setup`)."""


def _start(
    header: dict[str, Any], argv: list[str], cwd: str, env: dict[str, str], uid: int, channel: int | None
) -> _Child:
    """A job process: a fork of the warm fork-server when it can carry the command, else exec."""
    if _FORK_SERVER is not None and _FORK_SERVER.usable(argv, env):
        try:
            return _FORK_SERVER.spawn(header, argv, cwd, env, uid, channel)
        except (OSError, ValueError, KeyError):
            _FORK_SERVER.lost()  # e.g. it was OOM-killed; exec still works
    return _spawn(header, argv, cwd, env, uid, channel)


def _environment(home: str, extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "PYTHONPATH")}
    env.update({"HOME": home, "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def _scratch_for(judged: bool) -> dict[int, str]:
    """Set up /tmp and /dev/shm for the next job; each job uid's $TMPDIR.

    A plain job has them to itself (1777). In a judged job the server has no mount namespace to
    give each side a tmpfs of its own, so it splits the shared ones: /tmp becomes 0711 (no one
    lists it or creates in it) holding a 0700 directory per uid, each side's $TMPDIR; /dev/shm,
    where POSIX semaphores and shared memory must be created at the top, becomes 1733 (no one
    lists it; the sticky bit keeps each uid's entries its own), and with every job process's
    umask of 077 what either side creates there is unreadable to the other.
    """
    if os.getuid() != 0:  # a server that cannot switch uids runs no judged job
        return {CANDIDATE_UID: "/tmp"}
    os.chmod("/tmp", 0o711 if judged else 0o1777)
    with contextlib.suppress(OSError):
        os.chmod("/dev/shm", 0o1733 if judged else 0o1777)
    if not judged:
        return {CANDIDATE_UID: "/tmp"}
    for uid, path in PRIVATE_TMP.items():
        os.mkdir(path, 0o700)
        os.chown(path, uid, uid)
    return dict(PRIVATE_TMP)


def run_job(stream: BinaryIO, header: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Place the files, run the job under the deadline, collect, clean up.

    Returns the reply and an open descriptor of the result file (its size is in the reply).
    """
    clean = all([_wipe(directory) for directory in SCRATCH])
    candidate, side = header.get("candidate"), header.get("side")
    if (candidate is not None or side is not None) and os.getuid() != 0:
        raise ValueError("a judged job needs the server to run as root (it cannot switch uids)")
    if side not in (None, "judge", "candidate") or (side is not None and (candidate is not None or _PASS is None)):
        raise ValueError(f"no such side of a judged job here: {side!r}")
    judge_uid = JUDGE_UID if candidate is not None or side == "judge" else CANDIDATE_UID
    tmp = _scratch_for(candidate is not None)
    _place_files(stream, WORK, header["files"], judge_uid)
    if candidate is not None:
        _place_files(stream, CANDIDATE_WORK, candidate["files"], CANDIDATE_UID)
    oom_before = _oom_kills()
    started = time.monotonic()
    children: list[_Child] = []
    ends: list[socket.socket] = []  # the channel's ends while the server holds them
    try:
        if candidate is None and side is not None:  # one side of a judged job; the other is elsewhere
            ends.append(_passed_channel())
            env = _environment(WORK, {**header["env"], CHANNEL_ENV: str(CHANNEL_FD)})
            children.append(_start(header, header["command"], WORK, env, judge_uid, ends[0].fileno()))
        elif candidate is None:
            _drop_stale_stops()
            env = _environment(WORK, header["env"])
            children.append(_start(header, header["command"], WORK, env, judge_uid, None))
        else:
            ends += socket.socketpair()
            fd_env = {CHANNEL_ENV: str(CHANNEL_FD)}
            judge_env = _environment(WORK, {**header["env"], **fd_env, "TMPDIR": tmp[JUDGE_UID]})
            children.append(_start(header, header["command"], WORK, judge_env, judge_uid, ends[0].fileno()))
            # none of the judge's variables, its own temporary directory
            candidate_env = _environment(CANDIDATE_WORK, {**fd_env, "TMPDIR": tmp[CANDIDATE_UID]})
            children.append(
                _start(header, candidate["command"], CANDIDATE_WORK, candidate_env, CANDIDATE_UID, ends[1].fileno())
            )
    except OSError as exc:
        _kill_everyone([child.pid for child in children])
        for child in children:
            _drain([child], deadline=time.monotonic())
            os.close(child.pidfd)
        return {"error": str(exc), "clean": clean}, None
    finally:
        for end in ends:
            end.close()  # only the job's processes hold the channel
    timed_out = _supervise(children, float(header["timeout_s"]), _PASS if side == "candidate" else None)
    wall = time.monotonic() - started
    _kill_everyone([child.pid for child in children])
    _drain(children, deadline=time.monotonic() + 0.5)  # output written just before the end
    judge = children[0]
    result_fd, result_error = _open_result(header["result_file"])
    result_size = None
    if result_fd is not None:
        result_size = os.fstat(result_fd).st_size
        if result_size > int(header["result_limit"]):
            os.close(result_fd)
            result_fd, result_size = None, None
            result_error = f"result file too large (> {int(header['result_limit'])} bytes)"
    clean = all([_wipe(directory) for directory in SCRATCH]) and clean  # an open result fd survives this
    reply: dict[str, Any] = {
        "exit_code": None if timed_out else judge.exit_code(),
        "timed_out": timed_out,
        "oom_kills": _oom_kills() - oom_before,
        "stdout": judge.out.encoded(),
        "stderr": judge.err.encoded(),
        "stdout_dropped": judge.out.dropped,
        "stderr_dropped": judge.err.dropped,
        "result_size": result_size,
        "result_error": result_error,
        "peak_kb": max((getattr(child.usage, "ru_maxrss", 0) for child in children), default=0) or None,
        "wall_s": wall,
        "clean": clean,
    }
    if candidate is not None:
        other = children[1]
        reply.update(
            candidate_stdout=other.out.encoded(),
            candidate_stderr=other.err.encoded(),
            candidate_stdout_dropped=other.out.dropped,
            candidate_stderr_dropped=other.err.dropped,
            candidate_exit_code=other.exit_code(),
        )
    for child in children:
        os.close(child.pidfd)
    return reply, result_fd


def _supervise(children: list[_Child], timeout_s: float, stop: socket.socket | None = None) -> bool:
    """Pump the output until the first child (the judge) exits, or `stop` says "S" (the other side's
    judge is done); True when the deadline came first."""
    deadline = time.monotonic() + timeout_s
    selector = selectors.DefaultSelector()
    for child in children:
        for fd in child.pipes:
            selector.register(fd, selectors.EVENT_READ, child)
        selector.register(child.pidfd, selectors.EVENT_READ, child)
    if stop is not None:
        selector.register(stop, selectors.EVENT_READ, None)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            for key, _ in selector.select(remaining):
                child = key.data
                if child is None:  # the pass socket
                    message, fds = _pass_message()
                    for fd in fds:
                        os.close(fd)
                    if message == b"S":
                        return False
                    if not message:  # the host is gone: the deadline still ends the job
                        selector.unregister(key.fileobj)
                    continue
                if key.fd == child.pidfd:
                    child.reap()
                    selector.unregister(key.fileobj)
                    if child is children[0]:
                        return False
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    child.pipes[key.fd].add(chunk)
                else:
                    selector.unregister(key.fileobj)
                    del child.pipes[key.fd]
                    os.close(key.fd)
    finally:
        selector.close()


def _pass_message() -> tuple[bytes, list[int]]:
    """One message of the pass socket: (its byte, descriptors it carried); (b"", []) at its end."""
    assert _PASS is not None
    data, ancillary, _, _ = _PASS.recvmsg(1, socket.CMSG_SPACE(array.array("i").itemsize))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _passed_channel() -> socket.socket:
    """This side's end of the channel, sent by the host just before the request. A stop left over
    from an earlier job (its candidate had ended before the host said stop) is passed over."""
    assert _PASS is not None
    _PASS.settimeout(10.0)
    try:
        while True:
            data, fds = _pass_message()
            if not data:
                raise OSError("the host closed the pass socket")
            for fd in fds[1:]:
                os.close(fd)
            if data == b"F" and fds:
                return socket.socket(fileno=fds[0])
            for fd in fds[:1]:
                os.close(fd)
    finally:
        _PASS.settimeout(None)


def _drop_stale_stops() -> None:
    """Empty the pass socket before a job that takes nothing from it (stops meant for ended jobs)."""
    if _PASS is None:
        return
    _PASS.setblocking(False)
    try:
        while True:
            data, fds = _pass_message()
            for fd in fds:
                os.close(fd)
            if not data:
                return
    except BlockingIOError:
        return
    finally:
        _PASS.setblocking(True)


def _drain(children: list[_Child], deadline: float) -> None:
    """Read what is left in the output pipes; every writer is dead, so each ends at EOF."""
    for child in children:
        for fd, tail in child.pipes.items():
            os.set_blocking(fd, False)
            try:
                while time.monotonic() < deadline and (chunk := os.read(fd, 65536)):
                    tail.add(chunk)
            except BlockingIOError:  # a writer somehow outlived the kill: keep what came
                pass
            os.close(fd)
        child.pipes.clear()


def _send_result(stdout: BinaryIO, fd: int, size: int) -> None:
    """Stream exactly `size` bytes of the result file after the reply (padded if it shrank)."""
    sent = 0
    try:
        while sent < size:
            chunk = os.read(fd, min(1 << 20, size - sent))
            if not chunk:
                break
            stdout.write(chunk)
            sent += len(chunk)
    finally:
        os.close(fd)
    if sent < size:
        stdout.write(b" " * (size - sent))


def _clear_inheritable(libc: Any) -> None:
    """Empty the inheritable capability set (bubblewrap's --cap-add fills it; docker's does not),
    so no job process holds any capability set at all, not even an inheritable one."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} words
    if libc.capget(header, data) == 0 and (data[2] or data[5]):
        data[2] = data[5] = 0
        libc.capset(header, data)


def _harden() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    _clear_inheritable(libc)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/1/{fd,mem,environ} for the job
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: fork-server jobs are ours outside PID 1 too
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1, a default action means "ignored"


def serve(stdin: BinaryIO, stdout: BinaryIO, fork_server: str | None = None) -> None:
    """Answer requests until the host closes the stream or sends one marked `last`.

    `fork_server`: the source of `sandboxes.forkserver`, to start Python jobs as forks of a
    warm interpreter (a warm pool's containers), or None to exec every job.
    """
    global _FORK_SERVER, _PASS
    _harden()
    if os.environ.get(PASS_ENV, "").isdigit():
        _PASS = socket.socket(fileno=int(os.environ[PASS_ENV]))
        _PASS.set_inheritable(False)  # no job process holds it
    if fork_server is not None and os.getuid() == 0:
        _FORK_SERVER = _ForkServer(fork_server)
        _FORK_SERVER.start()
    while True:
        line = stdin.readline()
        if not line:
            return
        header = json.loads(_read_exact(stdin, int(line)))
        result_fd = None
        try:
            reply, result_fd = run_job(stdin, header)
        except (OSError, ValueError) as exc:
            reply = {"error": f"job server: {exc}", "clean": False}
        body = json.dumps(reply).encode()
        stdout.write(REPLY_TAG + b" %d\n" % len(body) + body)
        if result_fd is not None:
            _send_result(stdout, result_fd, int(reply["result_size"]))
        stdout.flush()
        if header.get("last") or not reply.get("clean", False):
            return


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer, sys.argv[1] if len(sys.argv) > 1 else None)
