"""The fork-server of a warm sandbox container: Python jobs start as forks of a warm interpreter.

A job's `python3 script.py` pays an interpreter start and its imports (numpy alone is a
large part of a short evaluation). This process, started once per container by the job server
(`sandboxes.jobserver`), imports the heavy modules and then only forks: each job process is a
fresh fork, set up exactly as the job server sets up an exec'd one (its own session, uid with
no capabilities, rlimits, working directory, environment, stdio pipes, channel on fd 3) and
then runs the program in the forked interpreter instead of exec'ing a new one.

Why it never holds job data: the fork-server receives nothing but "fork" and a socket. The new
process (a grandchild, reparented to the job server, which supervises and reaps it like any
job process) reads its own request from that socket, so no job's files, environment or
secrets pass through the fork-server's memory, and no fork inherits another job's. It runs as
root (it must set the children's uids), is non-dumpable, and job processes are another uid,
so they cannot trace or signal it; the job server kills job processes by uid, leaving it.

What differs from an exec'd interpreter, on purpose or unavoidably: /proc/<pid>/environ shows
the fork-server's (the job's environment is in os.environ only; cmdline is rewritten to the
job's); `sys.flags` and `sys.orig_argv` are the fork-server's (`-I`: it must never import from
a job's directory); a job whose environment sets other PYTHON* variables than PYTHONPATH,
PYTHONDONTWRITEBYTECODE and PYTHONUNBUFFERED is exec'd instead; the interpreter's
hash seed and address layout are the fork-server's, shared by every job (numpy's global random
state is reseeded per job, as `random`'s is by the interpreter); non-daemon threads are joined
at exit as usual, but interpreter finalisation is skipped (os._exit after atexit handlers).

Standard library only besides the preloaded modules; run by the job server with `-I -c`.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import importlib
import json
import os
import resource
import socket
import sys
import time
import traceback
import types
from typing import Any

CONTROL_FD = 3
PRELOAD = ("numpy", "__future__", "dataclasses", "importlib.util", "json", "math", "pathlib", "pkgutil", "runpy")
"""Imported once here so that jobs find them in sys.modules (numpy, and what the task harnesses
and `_run_program` use); missing ones are skipped."""
_BASE_PATH = list(sys.path)


def _receive(sock: socket.socket, size: int, fds: int) -> tuple[bytes, list[int]]:
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(fds * array.array("i").itemsize))
    received: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(payload[: len(payload) - len(payload) % numbers.itemsize])
            received += list(numbers)
    return data, received


def _run_program(argv: list[str]) -> int:
    """Run `python3 ...` in this interpreter as `python3` would, and return its exit code."""
    import runpy

    code = 0
    try:
        if argv[1] == "-c":
            sys.argv = ["-c", *argv[3:]]
            sys.path[:0] = [""]
            main = types.ModuleType("__main__")  # the fork-server's own stays with its functions
            sys.modules["__main__"] = main
            exec(compile(argv[2], "<string>", "exec"), main.__dict__)
        elif argv[1] == "-m":
            sys.argv = [argv[2], *argv[3:]]
            sys.path[:0] = [os.getcwd()]
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:
            try:
                with open(argv[1], "rb"):
                    pass
            except OSError as exc:  # as the interpreter says it, with its exit code
                print(f"python3: can't open file {os.path.abspath(argv[1])!r}: {exc}", file=sys.stderr)
                return 2
            sys.argv = argv[1:]
            sys.path[:0] = [os.path.dirname(os.path.abspath(argv[1]))]
            runpy.run_path(argv[1], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    return code


def _finish(code: int) -> None:
    """End a job process as the interpreter would, minus finalisation."""
    with contextlib.suppress(BaseException):
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads
    with contextlib.suppress(BaseException):
        import atexit

        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


def _become_job(request_sock: socket.socket, server_pid: int) -> None:
    """In the new (grandchild) process: wait to be the server's, take the request, run it."""
    high = fcntl.fcntl(request_sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 64)  # clear of fds 0-3
    request_sock.close()
    request_sock = socket.socket(fileno=high)
    deadline = time.monotonic() + 5.0
    while os.getppid() != server_pid and time.monotonic() < deadline:
        time.sleep(0.0001)  # until the intermediate process exits and we are reparented
    request_sock.sendall(json.dumps({"pid": os.getpid()}).encode())
    data, fds = _receive(request_sock, 1 << 20, 3)
    request = json.loads(data)
    try:
        _setup(request, fds, request_sock.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            request_sock.sendall(f"cannot start: {getattr(exc, 'strerror', None) or exc}".encode())
        os._exit(127)
    request_sock.close()  # EOF: the server knows the job runs
    _finish(_run_program(request["argv"]))


def _retitle(argv: list[str]) -> None:
    """Show the job's command in /proc/<pid>/cmdline (and ps), written over the fork-server's.

    The fork-server's argument area holds its whole source (`-c`), so a command fits there
    unless it is longer; it is cut then.
    """
    with open("/proc/self/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
    title = b"\0".join(arg.encode() for arg in argv)[: end - start - 1]
    with open("/proc/self/mem", "r+b", buffering=0) as memory:
        memory.seek(start)
        memory.write(title.ljust(end - start, b"\0"))


def _setup(request: dict[str, Any], fds: list[int], keep_fd: int) -> None:
    """What the job server does between fork and exec, then what a fresh interpreter would be."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    first_free = 3
    if len(fds) > 2:
        os.dup2(fds[2], 3)
        os.set_inheritable(3, True)
        first_free = 4
    os.closerange(first_free, keep_fd)  # keep_fd is above every fd moved here
    os.closerange(keep_fd + 1, 1 << 16)
    if os.getuid() == 0:
        os.setgroups([])
        uid = int(request["uid"])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    file_size, open_files = int(request["file_size"]), int(request["open_files"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o077)  # the job server's UMASK: what the job creates is its uid's alone
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("1000")
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again, as after exec: its own uid may trace it
    with contextlib.suppress(OSError, ValueError, IndexError):
        _retitle(request["argv"])  # needs the line above: /proc/self/mem is the uid's again
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = [*filter(None, request["env"].get("PYTHONPATH", "").split(":")), *_BASE_PATH]
    sys.dont_write_bytecode = bool(request["env"].get("PYTHONDONTWRITEBYTECODE"))
    if request["env"].get("PYTHONUNBUFFERED"):
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)  # type: ignore[union-attr]
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # type: ignore[attr-defined]  # found again from the job's TMPDIR
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()  # a fresh interpreter's global state is drawn at import, not inherited


def _warm_numpy() -> None:
    """Take numpy's common small-array paths once, on data of no job's, before any fork.

    numpy builds some of its state lazily, in each process on first use (a ufunc's loop and type
    promotion lookups, the adaptive interpreter's specialisations of its Python-level functions
    such as `append` or `asarray`); a fork inherits what is built, so jobs do not each pay it
    again (a short numpy evaluation ran about a fifth faster in a fork of a warmed interpreter).
    Touches no global random state (numpy.random is reseeded per job in `_setup` anyway).
    """
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return
    for values in (numpy.arange(6, dtype=float), numpy.arange(6), numpy.arange(6, dtype=numpy.float32)):
        flags = values > 2
        for result in (values + values, values - 1, values * 2.0, values / 3, values // 2, values % 4, -values,
                       abs(values), values ** 2, values >= 1, values == 1, values < values, values != 0):  # fmt: skip
            result.tolist()
        numpy.nonzero(flags)
        numpy.where(flags, values, 0)
        values[flags] -= 1
        for reduce in (numpy.sum, numpy.max, numpy.min, numpy.mean, numpy.std, numpy.argmax, numpy.argmin,
                       numpy.all, numpy.any, numpy.cumsum, numpy.sort, numpy.argsort, numpy.isfinite,
                       numpy.sqrt, numpy.exp, numpy.log1p, numpy.abs):  # fmt: skip
            reduce(values)
        numpy.append(values, 1)
        numpy.concatenate([values, values])
        numpy.clip(values, 0, 3)
        numpy.maximum(values, 1)
        numpy.minimum(values, 1)
        numpy.dot(values, values)
        values.astype(float)
        float(values[0])
        int(values[-1])
    numpy.asarray([1.0, 2.0], dtype=float)
    numpy.array([], dtype=float)
    numpy.zeros(3), numpy.ones((2, 2)), numpy.full(2, 1.5), numpy.linspace(0, 1, 5), numpy.empty(0)


def serve() -> None:
    control = socket.socket(fileno=CONTROL_FD)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # non-dumpable: no job reads this process
    server_pid = os.getppid()
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        _warm_numpy()
    control.sendall(b"ready")
    while True:
        try:
            _, fds = _receive(control, 16, 1)
        except OSError:
            return
        if not fds:
            return  # the server closed its end
        try:
            middle = os.fork()
        except OSError:  # no room for a process: the server sees the request socket close
            os.close(fds[0])
            continue
        if middle == 0:
            try:
                control.close()
                if os.fork() == 0:
                    _become_job(socket.socket(fileno=fds[0]), server_pid)
            finally:
                os._exit(0)
        os.close(fds[0])
        os.waitpid(middle, 0)


if __name__ == "__main__":
    serve()
