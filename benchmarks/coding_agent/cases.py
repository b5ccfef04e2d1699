"""The candidate's side of the coding_agent verify job: the agent's solutions, never the hidden tests.

The judge (judge.py, another uid, another directory) runs each problem's hidden tests in its own
process against a stand-in `solution` module whose every call crosses the channel to here
(`python clade_channel.py serve cases.py`). This process imports no solution itself:
`load(problem, timeout_s)` forks a fresh process for one solution (it serves this same file
with `cases/<problem>/solution.py` imported), so a solution that hangs or dies costs only its
own problem, and `relay` passes one call to it under a time limit, killing it when the limit
passes. Whatever runs here runs at the candidate's privilege and decides nothing: it only
answers calls, and the judge compares the answers with what its tests expect.

Replies are tagged data: ["v", value] (plain data: the codec's types, subclasses flattened),
["h", handle, type name] (an object kept here, e.g. a solution class's instance), ["e",
builtin exception name, message] (the solution raised), ["f"] (a callable attribute),
["t", why] (the time limit passed), ["x", why] (the solution's process failed), and once per
solution ["n", {name: tagged}] (its public names).
"""

import builtins
import contextlib
import importlib.util
import itertools
import os
import signal
import socket
import sys
import time
import types

import clade_channel as channel

CASE_ENV = "CLADE_CASE_DIR"
ITEMS = 100_000
"""At most this many items of an iterable the judge iterates."""
MESSAGE_CHARS = 2000

_running: dict = {}
"""This process's one solution process: `pid` and `link` (a channel to it), when one runs."""


# ---- the relaying process (the job's candidate process) ----


def load(problem, timeout_s):
    """Start the solution process of `problem`; its public names as tagged data, or a failure."""
    _stop()
    if not isinstance(problem, str) or not problem.isidentifier():
        return ["x", "not a problem name"]
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", problem)
    ours, theirs = socket.socketpair()
    try:
        pid = os.fork()  # this process has imported the channel (and NumPy) once for all problems
    except OSError as exc:
        ours.close()
        theirs.close()
        return ["x", f"cannot start the solution's process: {exc}"]
    if pid == 0:
        _solution_process(directory, ours, theirs)
    theirs.close()
    _running.update(pid=pid, link=channel.Channel(ours, float(timeout_s)))
    started = time.monotonic()
    try:
        _running["link"]._expect_reply(channel.READY, float(timeout_s), "importing the solution")
    except channel.CandidateFault as fault:
        return _failed(fault, started, timeout_s)
    return relay("describe", [], timeout_s - (time.monotonic() - started))


def _solution_process(directory, ours, theirs):
    """The forked child: without the judge's channel, it serves this file with the solution imported."""
    try:
        os.setsid()
        ours.close()
        os.close(int(os.environ.get(channel.CHANNEL_ENV, channel.CHANNEL_FD)))
        os.chdir(directory)
        os.environ[CASE_ENV] = directory
        channel.serve(os.path.abspath(__file__), theirs.fileno())
    finally:
        os._exit(0)


def relay(function, args, timeout_s):
    """One call of the judge's, passed to the solution's process; its reply, or why there is none."""
    link = _running.get("link")
    if link is None:
        return ["x", "the solution's process has ended"]
    started = time.monotonic()
    try:
        return link.call(function, *args, timeout_s=max(0.001, float(timeout_s)))
    except channel.CandidateFault as fault:
        return _failed(fault, started, timeout_s)


def _failed(fault, started, timeout_s):
    _stop()
    kind = "t" if time.monotonic() - started >= timeout_s else "x"
    return [kind, str(fault)[:MESSAGE_CHARS]]


def _stop():
    pid, link = _running.pop("pid", None), _running.pop("link", None)
    if link is not None:
        link.close()
    if pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


# ---- the solution's process (the same file, served with the solution imported) ----

_handles: dict = {}
_solution = None


def _import_solution(directory):
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("solution", os.path.join(directory, "solution.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["solution"] = module
    spec.loader.exec_module(module)
    return module


def describe():
    """["n", the solution's public names]: each ["c"] a class, ["f"] a function, else its value, tagged."""
    names = {}
    for name, value in vars(_solution).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        names[name] = ["c"] if isinstance(value, type) else ["f"] if callable(value) else _wrap(value)
    return ["n", names]


def invoke(owner, name, args, kwargs):
    """Call `name` of the solution (owner None) or of a kept object, on unwrapped arguments."""
    try:
        target = getattr(_solution if owner is None else _handles[owner], name)
        result = target(*map(_unwrap, args), **{key: _unwrap(value) for key, value in kwargs.items()})
    except Exception as exc:
        return _raised(exc)
    return _wrap(result)


def attribute(owner, name):
    try:
        value = getattr(_handles[owner], name)
    except Exception as exc:
        return _raised(exc)
    return ["f"] if callable(value) and not isinstance(value, type) else _wrap(value)


def iterate(owner):
    try:
        items = list(itertools.islice(iter(_handles[owner]), ITEMS))
    except Exception as exc:
        return _raised(exc)
    return _wrap(items)


def _raised(exc):
    """The nearest built-in exception class of what the solution raised, with its message."""
    base = next(k for k in type(exc).__mro__ if getattr(builtins, k.__name__, None) is k)
    return ["e", base.__name__, str(exc)[:MESSAGE_CHARS]]


def _unwrap(arg):
    if isinstance(arg, list) and len(arg) == 2 and arg[0] == "h":
        return _handles[arg[1]]
    return arg[1]


def _wrap(value):
    try:
        plain = _plain(value, 0)
        channel.encode(plain)
        return ["v", plain]
    except (TypeError, ValueError, RecursionError, channel.ChannelError):
        handle = str(len(_handles))
        _handles[handle] = value
        return ["h", handle, type(value).__name__[:100]]


def _plain(value, depth):
    """`value` as the codec's own types (an IntEnum as an int, a Counter as a dict), or TypeError."""
    if depth > channel.MAX_DEPTH:
        raise TypeError("nested too deep")
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if isinstance(value, int):  # bool subclasses nothing: an IntEnum, an int subclass
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {_plain(key, depth + 1): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item, depth + 1) for item in value)
    if isinstance(value, (set, frozenset)):
        return {_plain(item, depth + 1) for item in value}
    raise TypeError(f"{type(value).__name__} is not plain data")


if os.environ.get(CASE_ENV):  # imported by the solution's process's `serve`
    _solution = _import_solution(os.environ.pop(CASE_ENV))
