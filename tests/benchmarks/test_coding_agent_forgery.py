"""Forged solutions against the coding_agent verify job, run on the real process sandbox.

Each attack is a `solution.py` that does not solve its problem but tries to make the grader
report it solved: patch unittest's result classes at import, walk its own frames for the
grader's nonce and print the tagged line itself, read the hidden test files (beside it, in the
grader's directory, through another process's /proc) and answer from them, exit early, or
return an object equal to everything. Each must end "not solved", while the honest reference
beside it in the same job is solved (so the job itself works).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.coding_agent import CodingAgent, CodingAgentSettings
from benchmarks.task import Check
from sandboxes import Sandbox
from tests.sandboxes.conftest import open_backend

PROBLEMS = Path(__file__).parents[2] / "benchmarks" / "coding_agent" / "problems"

PATCH_UNITTEST = """
import unittest
unittest.TestResult.addFailure = lambda self, test, err: None
unittest.TestResult.addError = lambda self, test, err: None
unittest.TestResult.wasSuccessful = lambda self: True
def is_leap(year):
    return False
"""

NONCE_FROM_FRAMES = """
import gc, os, sys
frame = sys._getframe()
while frame is not None:
    nonce = frame.f_locals.get("nonce")
    if isinstance(nonce, str):
        sys.stdout.write("\\nCLADE-TESTS %s 6 0 0\\n" % nonce)
        sys.stdout.flush()
        os._exit(0)
    frame = frame.f_back
for thing in gc.get_objects():  # the judge's channel or runner, if it is in this process
    if type(thing).__name__ in ("Channel", "TextTestRunner", "TestResult"):
        os._exit(0)
def is_leap(year):
    return False
"""

READ_HIDDEN_TESTS = """
import ast, os
ANSWERS = {}
def _harvest(path):
    try:
        tree = ast.parse(open(path).read())
    except (OSError, SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "assertIs" and len(node.args) == 2:
            call, expected = node.args
            if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant):
                ANSWERS[call.args[0].value] = expected.value
def _walk(top, depth):
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        if entry.name == "test_hidden.py":
            _harvest(entry.path)
        elif depth and entry.is_dir(follow_symlinks=False) and entry.name not in ("proc", "sys", "dev", "usr"):
            _walk(entry.path, depth - 1)
here = os.path.dirname(os.path.abspath(__file__))
for top in (here, os.path.dirname(here), os.path.dirname(os.path.dirname(here)), os.getcwd(), "/", "/tmp"):
    _walk(top, 3)
for pid in os.listdir("/proc"):  # every other process's working directory
    if pid.isdigit():
        _walk("/proc/%s/cwd" % pid, 3)
        _walk("/proc/%s/root/tmp" % pid, 3)
if not ANSWERS:
    raise SystemExit("no hidden test was reachable")
def is_leap(year):
    return ANSWERS.get(year, False)
"""

EXIT_EARLY = "import os\nos._exit(0)\n"

EQUAL_TO_EVERYTHING = """
class _Anything(str):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = str.__hash__
class _Opaque:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def two_fer(name="you"):
    return _Opaque()
"""

STR_EQUAL_TO_EVERYTHING = EQUAL_TO_EVERYTHING.replace("return _Opaque()", "return _Anything('x')")

ATTACKS = {
    "patch_unittest": ("leap", PATCH_UNITTEST),
    "nonce_from_frames": ("leap", NONCE_FROM_FRAMES),
    "read_hidden_tests": ("leap", READ_HIDDEN_TESTS),
    "exit_early": ("leap", EXIT_EARLY),
    "equal_to_everything": ("two_fer", EQUAL_TO_EVERYTHING),
    "str_equal_to_everything": ("two_fer", STR_EQUAL_TO_EVERYTHING),
}


@pytest.fixture(scope="module", params=["process", pytest.param("docker-warm", marks=pytest.mark.docker)])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    opened = open_backend(request.param)
    yield opened
    opened.close()


def _verify(sandbox: Sandbox, solutions: dict[str, str]) -> Check:
    task = CodingAgent(CodingAgentSettings(quick=tuple(solutions), full=(), test_timeout_s=20))
    stage = task.stages()[0]
    run = {"mode": "run", "stage": "quick", "problems": {p: {"solution": s} for p, s in solutions.items()}}
    job = task.verify_job(stage, run)
    assert job is not None
    outcome = sandbox.run(job)
    assert outcome.failure() is None, outcome.stderr
    return task.check(stage, {"run": run, "verify": outcome.result})


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_solution_is_not_solved_while_an_honest_one_beside_it_is(sandbox: Sandbox, attack: str) -> None:
    problem, source = ATTACKS[attack]
    honest = "hamming"
    check = _verify(sandbox, {problem: source, honest: (PROBLEMS / honest / "reference.py").read_text()})
    assert check.valid, check.reason
    assert check.metrics[f"solved_{honest}"] == 1.0, check.log
    assert check.metrics[f"solved_{problem}"] == 0.0, check.log


def test_a_solution_that_hangs_fails_its_problem_but_not_the_next_one(sandbox: Sandbox) -> None:
    hang = "def distance(a, b):\n    while True:\n        pass\n"  # hamming runs before leap
    task = CodingAgent(CodingAgentSettings(quick=("leap", "hamming"), full=(), test_timeout_s=3))
    stage = task.stages()[0]
    solutions = {"hamming": hang, "leap": (PROBLEMS / "leap" / "reference.py").read_text()}
    run = {"mode": "run", "stage": "quick", "problems": {p: {"solution": s} for p, s in solutions.items()}}
    job = task.verify_job(stage, run)
    assert job is not None
    outcome = sandbox.run(job)
    check = task.check(stage, {"run": run, "verify": outcome.result})
    assert check.metrics["solved_hamming"] == 0.0 and "timed out" in check.log
    assert check.metrics["solved_leap"] == 1.0, check.log
