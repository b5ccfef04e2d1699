"""Forged drifts against rl_objective's judge, through `benchmarks.evaluate` on the real process
sandbox and the shipped judge, adapter and check (tests/benchmarks/test_forgery.py does the
same for the other judged tasks). The judge owns the environments, their secret seeds, the
policy and the returns; the candidate hears ratios, advantages and the progress and answers a
gradient. Each attack ends invalid or scored no better than the honest drift inside it.

The stage is cut to a few PPO updates on CartPole (same judge and check, fewer steps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import benchmarks.rl_objective as rl
from benchmarks import Evaluation, evaluate
from benchmarks.task import Stage
from sandboxes.process import ProcessSandbox
from tests.benchmarks.test_forgery import SNOOP, _found, _no_better, needs_separation, writer_patched

pytest.importorskip("jax")
pytest.importorskip("gymnax")

SECRETS = {"cartpole": 21}
SMALL = {"total_steps": 8 * 8 * 32, "num_envs": 8, "num_steps": 32, "epochs": 2, "minibatches": 2}


class SmallRl(rl.RlObjective):
    """The cartpole stage on 8 short PPO updates: the shipped judge, adapter and check, quickly."""

    call_timeout_s = 3.0
    compile_timeout_s = 15.0

    def __init__(self) -> None:
        super().__init__("cpu")

    def stages(self) -> Sequence[Stage]:
        return (Stage("cartpole", timeout_s=150),)

    def planned(self, stage: Stage) -> list[dict[str, Any]]:
        return [run | SMALL for run in super().planned(stage)]


HONEST = SmallRl().seed_files()["program.py"]


def _run(source: str, task: rl.RlObjective | None = None) -> Evaluation:
    task = task or SmallRl()
    return evaluate(task, {task.main_file: source}, ProcessSandbox(), secrets=SECRETS)


def _adapter(gradient: str, prelude: str = "") -> str:
    """The honest drift, plus a module standing in for the shipped adapter whose `gradient`
    body is `gradient` (the candidate's process is its own: it can answer anything)."""
    return (
        HONEST
        + "import sys as _sys, types as _types\nimport numpy as np\n"
        + prelude
        + "class DriftGradient:\n"
        + "    def gradient(self, ratio, advantage, progress):\n"
        + "".join(f"        {line}\n" for line in gradient.splitlines())
        + "_fake = _types.ModuleType('clade_drift')\n_fake.DriftGradient = DriftGradient\n"
        + "_sys.modules['clade_drift'] = _fake\n"
    )


@pytest.fixture(scope="module")
def honest() -> Evaluation:
    result = _run(HONEST)
    assert result.status == "valid", result.reason
    return result


def test_the_result_written_or_the_writer_patched_is_never_read(honest: Evaluation) -> None:
    forged = {"stage": "cartpole", "device": "cpu", "runs": [], "normalised_return": 9.0}
    attack = writer_patched(forged, HONEST)
    result = _run(attack)
    assert result.status == "valid" and result.score == honest.score


@pytest.mark.parametrize(
    ("program", "why"),
    [
        ("import os\nos._exit(0)\n" + HONEST, "ended"),
        (HONEST.replace('    """PPO', '    import os\n    os._exit(0)\n    """PPO'), "ended"),
        (HONEST.replace("return jax.nn.relu(", "return jnp.nan * ratio + jax.nn.relu("), "not finite"),
        (HONEST.replace("return jax.nn.relu(", "return 1e39 * ratio + jax.nn.relu("), "not finite"),
        (HONEST.replace("return jax.nn.relu((ratio - clipped) * advantage)", "return ratio[:3]"), "one value per"),
        (HONEST.replace('    """PPO', '    import time\n    time.sleep(60)\n    """PPO'), "longer than"),
    ],
    ids=["exit-at-import", "exit-in-drift", "nan", "beyond-float32", "wrong-shape", "sleep-while-tracing"],
)
def test_a_broken_drift_is_invalid_with_a_reason(program: str, why: str) -> None:
    result = _run(program)
    assert result.status == "invalid" and why in (result.reason or ""), result.reason


@pytest.mark.parametrize(
    ("gradient", "why"),
    [
        ("return np.zeros((3, 3))", "shape"),
        ("return np.asarray(ratio).tolist()", "array of numbers"),
        ("return np.full(np.shape(ratio), np.inf)", "not finite"),
        ("import time\ntime.sleep(10)\nreturn np.zeros(np.shape(ratio))", "longer than 3s"),
        ("return np.full(np.shape(ratio), 1e300)", "not finite"),
        ("return {'gradient': np.zeros(np.shape(ratio)), 'return_sum': 500.0}", "array of numbers"),
    ],
    ids=["wrong-shape", "list", "infinite", "sleep-past-the-call-limit", "beyond-float32", "claims-returns"],
)
def test_a_forged_adapter_reply_is_invalid_with_a_reason(gradient: str, why: str) -> None:
    result = _run(_adapter(gradient))
    assert result.status == "invalid" and why in (result.reason or ""), result.reason


def test_a_huge_finite_gradient_is_no_better_than_honest(honest: Evaluation) -> None:
    """Within float32 but enormous: Adam and the gradient clip bound the step, or the policy blows up."""
    result = _run(_adapter("return np.full(np.shape(ratio), 1e30)"))
    if result.status != "invalid":
        _no_better(result, honest)


def test_the_candidate_holds_no_seed_observation_or_policy(honest: Evaluation) -> None:
    """Its frames and objects hold only what the judge sent: arrays of (seeds, minibatch) numbers.
    The forged adapter snoops, then answers with the shipped adapter's gradient."""
    attack = HONEST + (
        "import gc, importlib.util, sys, types\n"
        "import numpy as np\n"
        "_spec = importlib.util.spec_from_file_location('_shipped', 'clade_drift.py')\n"
        "_shipped = importlib.util.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(_shipped)\n"
        "class DriftGradient(_shipped.DriftGradient):\n"
        "    def gradient(self, ratio, advantage, progress):\n"
        "        if getattr(self, 'snooped', False):\n"
        "            return super().gradient(ratio, advantage, progress)\n"
        "        self.snooped = True\n"  # once, within the first call's (compile) time limit
        f"        seeds = set({rl.env_seeds(SECRETS['cartpole'], 4)!r})\n"  # to prove it finds none
        "        objects = gc.get_objects()\n"
        "        frame = sys._getframe()\n"
        "        while frame is not None:\n"
        "            objects += list(frame.f_locals.values())\n"
        "            frame = frame.f_back\n"
        "        for o in objects:\n"
        "            shape = o.shape if isinstance(o, (np.ndarray, jax.Array)) else ()\n"
        "            if len(shape) == 2 and (64 in shape or shape[-1] == 4):\n"
        "                print('SNOOP a policy layer or observations', shape, file=sys.stderr)\n"
        "            values = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()\n"
        "            if any(type(v) is int and v in seeds for v in values):\n"
        "                print('SNOOP a seed', file=sys.stderr)\n"
        "        return super().gradient(ratio, advantage, progress)\n"
        "_fake = types.ModuleType('clade_drift')\n"
        "_fake.DriftGradient = DriftGradient\n"
        "sys.modules['clade_drift'] = _fake\n"
    )
    result = _run(attack)
    assert result.status == "valid", result.reason
    assert [line for stage in result.stages for line in stage.stderr_tail.splitlines() if "SNOOP" in line] == []
    assert result.score == honest.score


@needs_separation
def test_the_candidate_reaches_no_spec_judge_or_result(honest: Evaluation) -> None:
    forged = {"stage": "cartpole", "device": "cpu", "runs": []}
    attack = SNOOP + f"_snoop(['spec.json', 'judge.py'], {forged!r})\n" + HONEST
    result = _run(attack)
    assert _found(result) == [] and result.score == honest.score


def test_the_seeds_come_from_the_secret_and_a_fault_is_invalid() -> None:
    task = rl.RlObjective("cpu")
    assert task.judged and rl.RlObjective("gpu").judged
    a, b = (task.planned(Stage("cartpole", secret=s))[0]["seeds"] for s in (1, 2))
    assert a != b and len(set(a)) == 4 and all(0 <= s < 2**31 for s in a)
    assert task.planned(Stage("cartpole"))[0]["seeds"] == [0, 1, 2, 3]
    check = task.check(Stage("cartpole", secret=1), {"stage": "cartpole", "fault": "drift.gradient() took too long"})
    assert not check.valid and "candidate fault" in (check.reason or "")
