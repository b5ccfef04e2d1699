"""The job server: PID 1 of every sandbox container, speaking the host's protocol on stdio.

Why a server inside the container rather than `docker exec` per job: exec needs a new
process in the container's cgroup (impossible once a fork bomb fills its pids limit) and costs
a runc round trip per job, while a long-lived PID 1 reached over the attach stream costs only
the job's own fork and exec. That is what lets a warm pool run a job within a few milliseconds
of a bare interpreter start; a fresh container is the same server answering one request.

Why PID 1 is safe to share with a hostile job running as the same user: the kernel does not
deliver signals from inside a PID namespace to its init unless init handles them (SIGKILL and
SIGSTOP included), and the server makes itself non-dumpable, so the job can neither ptrace it
nor open /proc/1/fd or /proc/1/mem. The job's stdio are pipes to the server, never the
container's streams, so it cannot write into the protocol. The host still trusts nothing it
receives: results are re-parsed strictly and the host enforces its own deadline.

Protocol (host to server, on stdin): a line with the header's byte length, the JSON header
(`command`, `env`, `timeout_s`, `files` as [name, size] pairs, `result_file`, limits, `last`),
then the files' bytes in order. Server to host, on stdout: `CLADE-REPLY <length>` and a JSON
reply. After a reply the server has killed every other process in the container and emptied
the writable directories, ready for the next job unless `last` was set.

This file runs inside the image's interpreter with the standard library only, via `-c`, so
the image need not be rebuilt when it changes.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import time
from typing import Any, BinaryIO

WORK = "/work"
SCRATCH = (WORK, "/tmp", "/dev/shm")
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


def _kill_everyone(pgid: int | None) -> None:
    """Kill every other process in the container and reap them.

    Only as PID 1 (inside the container's PID namespace) is `kill(-1)` confined to the job;
    anywhere else it would reach the whole host, so there only the job's group is killed.
    """
    for _ in range(1000):
        try:
            if os.getpid() == 1:
                os.kill(-1, signal.SIGKILL)
            elif pgid is not None:
                os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _wipe(directory: str) -> bool:
    """Empty a writable directory the job may have littered; True when it is empty after."""
    if not os.path.isdir(directory):
        return True

    def unlock(func: Any, path: str, _exc: Any) -> None:
        parent = os.path.dirname(path)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass

    with contextlib.suppress(OSError):
        os.chmod(directory, os.stat(directory).st_mode | stat.S_IRWXU)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, onerror=unlock)
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # not ours (e.g. another user's file in /tmp): left, but reported below
    try:
        return not any(entry.stat(follow_symlinks=False).st_uid == os.getuid() for entry in os.scandir(directory))
    except OSError:
        return False


def _place_files(stream: BinaryIO, files: list[list[Any]]) -> None:
    for name, size in files:
        parts = name.split("/")
        if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"bad file name {name!r}")
        content = _read_exact(stream, int(size))
        parent = os.path.join(WORK, *parts[:-1])
        os.makedirs(parent, exist_ok=True)
        fd = os.open(os.path.join(WORK, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)


def _read_result(name: str, limit: int) -> tuple[bytes | None, str | None]:
    try:
        fd = os.open(os.path.join(WORK, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, "wrote no result file"
    except OSError as exc:
        return None, f"result file unreadable: {exc.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO, a directory, a device
            return None, "result file is not a regular file"
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, f"result file too large (> {limit} bytes)"
    return data, None


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


def _limiter(header: dict[str, Any]) -> Any:
    file_size = int(header["file_size"])
    open_files = int(header["open_files"])

    def apply() -> None:  # in the job's process, between fork and exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:  # the job, not the server, is the one the kernel's OOM killer should pick
            with open("/proc/self/oom_score_adj", "w") as handle:
                handle.write("1000")
        except OSError:
            pass

    return apply


def run_job(stream: BinaryIO, header: dict[str, Any]) -> dict[str, Any]:
    """Place the files, run the command under the deadline, collect, clean up."""
    clean = all([_wipe(directory) for directory in SCRATCH])
    _place_files(stream, header["files"])
    out, err = _Tail(int(header["output_bytes"])), _Tail(int(header["output_bytes"]))
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "PYTHONPATH")}
    env.update({"HOME": WORK, "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(header["env"])
    oom_before = _oom_kills()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            header["command"],
            cwd=WORK,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_limiter(header),
        )
    except OSError as exc:
        return {"error": f"cannot start {header['command'][0]!r}: {exc.strerror or exc}", "clean": clean}
    status, usage, timed_out = _supervise(proc, float(header["timeout_s"]), out, err)
    wall = time.monotonic() - started
    _kill_everyone(proc.pid)
    proc.returncode = 0  # reaped by hand; keeps Popen from waiting again
    result, result_error = _read_result(header["result_file"], int(header["result_limit"]))
    clean = all([_wipe(directory) for directory in SCRATCH]) and clean
    return {
        "exit_code": None if status is None else os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "oom_kills": _oom_kills() - oom_before,
        "stdout": out.encoded(),
        "stderr": err.encoded(),
        "stdout_dropped": out.dropped,
        "stderr_dropped": err.dropped,
        "result": None if result is None else base64.b64encode(result).decode(),
        "result_error": result_error,
        "peak_kb": getattr(usage, "ru_maxrss", None),
        "wall_s": wall,
        "clean": clean,
    }


def _supervise(proc: subprocess.Popen[bytes], timeout_s: float, out: _Tail, err: _Tail) -> tuple[Any, Any, bool]:
    """Pump the job's output until it exits or the deadline passes; (status, rusage, timed_out)."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    pidfd = os.pidfd_open(proc.pid)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, out)
    selector.register(proc.stderr, selectors.EVENT_READ, err)
    selector.register(pidfd, selectors.EVENT_READ, None)
    exited = False
    try:
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, None, True
            for key, _ in selector.select(remaining):
                if key.data is None:
                    exited = True
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    key.data.add(chunk)
                else:
                    selector.unregister(key.fileobj)
        _, status, usage = os.wait4(proc.pid, 0)
        _drain(selector, deadline=time.monotonic() + 0.2)  # output written just before exit
        return status, usage, False
    finally:
        selector.close()
        os.close(pidfd)


def _drain(selector: selectors.BaseSelector, deadline: float) -> None:
    while time.monotonic() < deadline:
        streams = [key for key in selector.get_map().values() if key.data is not None]
        if not streams:
            return
        ready = selector.select(max(0.0, deadline - time.monotonic()))
        if not ready:
            return
        for key, _ in ready:
            if key.data is None:
                continue
            chunk = os.read(key.fd, 65536)
            if chunk:
                key.data.add(chunk)
            else:
                selector.unregister(key.fileobj)


def _harden() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/1/{fd,mem,environ} for the job
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1, a default action means "ignored"


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer requests until the host closes the stream or sends one marked `last`."""
    _harden()
    while True:
        line = stdin.readline()
        if not line:
            return
        header = json.loads(_read_exact(stdin, int(line)))
        try:
            reply = run_job(stdin, header)
        except (OSError, ValueError) as exc:
            reply = {"error": f"job server: {exc}", "clean": False}
        body = json.dumps(reply).encode()
        stdout.write(REPLY_TAG + b" %d\n" % len(body) + body)
        stdout.flush()
        if header.get("last") or not reply.get("clean", False):
            return


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
