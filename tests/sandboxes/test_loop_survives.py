"""A hostile candidate costs one `error` evaluation; the next candidate is judged as usual."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.evaluate import ERROR, VALID, evaluate
from benchmarks.task import Check, Stage, Task
from sandboxes import Sandbox
from tests.sandboxes.conftest import TEST_LIMITS

HARNESS = b"import json\nfrom program import answer\njson.dump({'answer': answer()}, open('result.json', 'w'))\n"


class Answer(Task):
    """The smallest task: `answer()` should return 42."""

    name = "answer"
    description = "return 42"
    metric = "distance"
    limits = TEST_LIMITS

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: "def answer():\n    return 0\n"}

    def stages(self) -> Sequence[Stage]:
        return [Stage("full", timeout_s=3.0)]

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return {"harness.py": HARNESS}

    def check(self, stage: Stage, raw: Any) -> Check:
        if not isinstance(raw, dict) or not isinstance(raw.get("answer"), (int, float)):
            return Check.invalid("no numeric answer")
        distance = abs(float(raw["answer"]) - 42)
        return Check(valid=True, score=-distance, metrics={"distance": distance})


HOSTILE = {
    "fork_bomb": "import os\ndef answer():\n    while True:\n        try:\n            os.fork()\n"
    "        except OSError:\n            pass\n",
    "infinite_loop": "def answer():\n    while True:\n        pass\n",
    "kill_everything": "import os, signal\ndef answer():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 42\n",
}


def _harmful_here(name: str, sandbox: Sandbox) -> bool:
    """Cases the process backend cannot contain on this host (see test_hostile's limitations)."""
    if sandbox.name != "process":
        return False
    facts = sandbox.describe()
    if name == "kill_everything":  # would kill this test process without a PID namespace
        return "own PID namespace" not in facts["processes"]
    return name == "fork_bomb" and str(facts["cgroup"]).startswith("none")


def test_the_loop_goes_on_after_hostile_candidates(sandbox: Sandbox) -> None:
    task = Answer()
    for name, source in HOSTILE.items():
        if _harmful_here(name, sandbox):
            continue
        verdict = evaluate(task, {"program.py": source}, sandbox)
        assert verdict.status in (ERROR, VALID), (name, verdict)
        if name != "kill_everything":
            assert verdict.status == ERROR, (name, verdict)
    good = evaluate(task, {"program.py": "def answer():\n    return 41\n"}, sandbox)
    assert good.status == VALID and good.score == -1.0, good
