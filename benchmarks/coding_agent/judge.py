"""The judge of the coding_agent verify job: runs each problem's hidden tests, here, against the
agent's solution in the candidate's process (cases.py), and writes the counts itself.

The hidden tests (`tests/<problem>/test_hidden.py`) and this process's memory are the judge's:
another uid, another directory. Each test file is imported with a stand-in `solution` module
whose functions and classes forward every call over the channel; what comes back is plain data
(or an opaque handle to an object that stays in the candidate's process and compares equal to
nothing but itself), or one of the built-in exceptions, raised here. So a solution can only
answer calls: it cannot patch unittest, see a test's expected value, write the report or end
the run early, and a reply that breaks the protocol or comes late fails its problem's tests.
Each problem has its own time limit, enforced here; a solution that hangs loses its problem.
"""

import builtins
import functools
import importlib.util
import io
import json
import os
import sys
import time
import types
import unittest

from clade_channel import CandidateFault, ChannelError, run_judge

OUTPUT_TAIL = 3000
SLACK_S = 5.0
"""How much longer than a call's own limit the judge waits for the candidate's relay to answer."""


class SolutionFailed(BaseException):
    """The solution's process timed out, died or broke the protocol: the test errs, whatever it
    expects (not an Exception, so that `assertRaises(Exception)` does not take it for one)."""


class Link:
    """The channel to the candidate, broken for good once a reply is late or malformed."""

    def __init__(self, channel):
        self.channel = channel
        self.broken = None

    def ask(self, function, args, timeout_s):
        if self.broken is not None:
            raise SolutionFailed(self.broken)
        try:
            reply = self.channel.call(function, *args, timeout_s=timeout_s + SLACK_S)
        except ChannelError as exc:  # an argument the codec cannot carry: nothing was sent
            raise SolutionFailed(f"cannot send the call: {exc}") from None
        except CandidateFault as fault:
            self.broken = f"the candidate's process stopped answering: {fault}"
            raise SolutionFailed(self.broken) from None
        if not (isinstance(reply, list) and reply and isinstance(reply[0], str)):
            self.broken = "the candidate's process sent a malformed reply"
            raise SolutionFailed(self.broken)
        return reply


class Problem:
    """One problem's solution as the tests see it, under the problem's deadline."""

    def __init__(self, link, timeout_s):
        self.link = link
        self.deadline = time.monotonic() + timeout_s
        self.timed_out = False

    def ask(self, function, *args):
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            raise SolutionFailed("the hidden tests timed out")
        reply = self.link.ask("relay", [function, list(args), left], left)
        if reply[0] == "t":
            self.timed_out = True
        return reply

    def value(self, reply):
        """What a tagged reply stands for: a value, a handle, or a raised exception."""
        tag = reply[0]
        if tag == "v" and len(reply) == 2:
            return reply[1]
        if tag == "h" and len(reply) == 3 and isinstance(reply[1], str):
            return Remote(self, reply[1], str(reply[2]))
        if tag == "e" and len(reply) == 3:
            kind = getattr(builtins, str(reply[1]), None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(str(reply[2]))
        if tag in ("t", "x") and len(reply) == 2:
            raise SolutionFailed(f"the solution's process failed: {reply[1]}"[:500])
        raise SolutionFailed("the candidate's process sent a malformed reply")

    def call(self, owner, name, *args, **kwargs):
        def out(arg):
            if isinstance(arg, Remote):
                if arg._problem is not self:
                    raise SolutionFailed("an object of another problem's solution")
                return ["h", arg._handle]
            return ["v", arg]

        wrapped = {key: out(value) for key, value in kwargs.items()}
        return self.value(self.ask("invoke", owner, name, [out(arg) for arg in args], wrapped))


class Remote:
    """An object that stays in the candidate's process; equal only to itself."""

    __slots__ = ("_handle", "_kind", "_problem")

    def __init__(self, problem, handle, kind):
        self._problem, self._handle, self._kind = problem, handle, kind

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        reply = self._problem.ask("attribute", self._handle, name)
        if reply[0] == "f" and len(reply) == 1:
            return functools.partial(self._problem.call, self._handle, name)
        return self._problem.value(reply)

    def __iter__(self):
        items = self._problem.value(self._problem.ask("iterate", self._handle))
        if not isinstance(items, list):
            raise TypeError(f"the solution's {self._kind} object did not iterate to plain data")
        return iter(items)

    def __repr__(self):
        return f"<{self._kind} object in the solution's process>"


def solution_module(problem, names):
    """The stand-in `solution` module the hidden tests import."""
    if not isinstance(names, dict):
        raise SolutionFailed("the candidate's process sent a malformed list of names")
    module = types.ModuleType("solution")
    for name, entry in names.items():
        if not (isinstance(name, str) and name.isidentifier() and isinstance(entry, list) and entry):
            continue
        if entry[0] in ("f", "c") and len(entry) == 1:
            setattr(module, name, functools.partial(problem.call, None, name))
        else:
            setattr(module, name, problem.value(entry))
    return module


def run_problem(link, problem, timeout_s):
    """Run one problem's hidden tests; the counts, whether it timed out, the runner's output."""
    started = time.monotonic()
    session = Problem(link, timeout_s)
    stream = io.StringIO()
    counts = None
    try:
        reply = session.link.ask("load", [problem, timeout_s], timeout_s)
        if reply[0] == "t":
            session.timed_out = True
        names = reply[1] if reply[0] == "n" and len(reply) == 2 else session.value(reply)
    except SolutionFailed as exc:
        stream.write(f"the solution did not load: {exc}\n")
    except Exception as exc:
        stream.write(f"the solution did not load: {type(exc).__name__}: {exc}\n")
    else:
        counts = _run_tests(session, names, problem, stream)
    return {
        "timed_out": session.timed_out,
        "tests_run": counts[0] if counts else 0,
        "failures": counts[1] if counts else 0,
        "errors": counts[2] if counts else 1,
        "reported": counts is not None,
        "output": stream.getvalue()[-OUTPUT_TAIL:],
        "wall_s": round(time.monotonic() - started, 3),
    }


def _run_tests(session, names, problem, stream):
    try:
        sys.modules["solution"] = solution_module(session, names)
        path = os.path.join("tests", problem, "test_hidden.py")
        spec = importlib.util.spec_from_file_location("test_hidden", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
        return result.testsRun, len(result.failures), len(result.errors) + len(result.unexpectedSuccesses)
    except BaseException as exc:  # the stand-in lacks a name the tests import, or the solution failed
        stream.write(f"could not load the tests: {exc!r}\n")
        return 0, 0, 1
    finally:
        sys.modules.pop("solution", None)
        sys.modules.pop("test_hidden", None)


def main():
    stage = sys.argv[1]
    with open("settings.json", encoding="utf-8") as handle:
        timeout_s = float(json.load(handle)["test_timeout_s"])

    def body(channel):
        link = Link(channel)
        problems = sorted(os.listdir("tests"))
        return {"mode": "verify", "problems": {p: run_problem(link, p, timeout_s) for p in problems}}

    run_judge(stage, body)


if __name__ == "__main__":
    main()
