"""Forged update rules against optimizer_discovery's judge (benchmarks/optimizer_discovery/judge.py),
run through `benchmarks.evaluate` on the real process sandbox: each ends rejected or scored no
better than the honest rule inside it (tuned AdamW).

The attacks a reward-hacking search would find when the rule ran inside the harness: read the
validation data (from the judge's files, its frames, the garbage collector), write the result or
patch its writer, die early, send NaN, huge or misshapen tensors, return a tensor that records
what it is multiplied with (the validation pass), warm-start one run from another, stall; and
one the judge alone cannot stop, a rule that returns weights it knows in advance (fitted at
import on the published data), which the stage's secret makes worthless. The stage is shortened
(one run per problem, 60 steps) but the judge, the candidate's adapter and the host check are
the shipped ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import benchmarks.optimizer_discovery as od
from benchmarks import Evaluation, evaluate
from benchmarks.task import Check, Stage, fault
from sandboxes.process import ProcessSandbox
from tests.benchmarks.test_forgery import SNOOP, _found, needs_separation, writer_patched
from tests.benchmarks.test_learning_tasks import needs_torch

pytestmark = needs_torch

HERE = Path(__file__).parents[2] / "benchmarks" / "optimizer_discovery"
ADAMW = (HERE / "baselines" / "adamw.py").read_text()
PLANNED = [od.run_spec(p, 0, 60, *od.TUNED_ADAMW[p]) for p in od.CPU_PROBLEMS]


class ShortOptimizer(od.OptimizerDiscovery):
    """The cpu stage cut to one 60-step run per problem: the shipped judge and check, quickly.
    `public`: the judge on the published data whatever the secret (as before the secret)."""

    def __init__(self, public: bool = False) -> None:
        super().__init__("cpu")
        self.public = public

    def stages(self) -> Sequence[Stage]:
        return (Stage("cpu", timeout_s=120),)

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        files = super().harness_files(stage)
        secret = None if self.public else stage.secret
        planned = [run | {"secret": secret} for run in PLANNED]
        return files | {"spec.json": json.dumps({"device": "cpu", "runs": planned}).encode()}

    def check(self, stage: Stage, raw: Any) -> Check:
        faulted = fault(raw)
        return faulted if faulted is not None else od.check_cpu(raw, stage.name, PLANNED)


def _run(source: str, public: bool = False) -> Evaluation:
    task = ShortOptimizer(public)
    return evaluate(task, {task.main_file: source}, ProcessSandbox(), secrets={"cpu": 5})


@pytest.fixture(scope="module")
def honest() -> Evaluation:
    result = _run(ADAMW)
    assert result.status == "valid", result.reason
    return result


def _no_better(attack: Evaluation, honest: Evaluation) -> None:
    if attack.status == "valid":
        assert attack.score is not None and honest.score is not None
        assert attack.score <= honest.score + 1e-9, f"forged {attack.score} > honest {honest.score}"


def test_adamw_under_the_baseline_secret_gives_the_reference_figures() -> None:
    """The full cpu stage under `BASELINE_SECRET` gives tuned AdamW's reference figures exactly (to
    1e-6), and again, bit for bit, on a second evaluation: the same secret, the same runs."""
    task = od.OptimizerDiscovery("cpu")
    results = [
        evaluate(task, {task.main_file: ADAMW}, ProcessSandbox(), secrets={"cpu": od.BASELINE_SECRET}) for _ in range(2)
    ]
    assert all(r.status == "valid" for r in results), [r.reason for r in results]
    for problem, reference in od.REFERENCE.items():
        assert results[0].metrics[f"val_loss_{problem}"] == pytest.approx(reference["val_loss"], rel=1e-6)
    assert results[0].metrics["val_accuracy_digits"] == pytest.approx(od.REFERENCE["digits"]["val_accuracy"], abs=1e-9)
    assert results[0].metrics == results[1].metrics


# Fits, at import, the two MLPs to all of the published data (the validation split included, as
# the judge builds it without a secret), then answers those weights at every step, whatever the
# gradients: each run's tensors are told apart by the order init_state meets them.
MEMORISED = r"""
import math
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
def _fit(x, y, sizes, loss_fn):
    torch.manual_seed(0)
    layers = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(600):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]
_x, _y = load_digits(return_X_y=True)
_order = np.random.default_rng(0).permutation(len(_x))
DIGITS = _fit(torch.tensor(_x[_order] / 16.0, dtype=torch.float32), torch.tensor(_y[_order]), [64, 64, 10],
              torch.nn.functional.cross_entropy)
_rng = np.random.default_rng(1234)
_w1, _b1 = _rng.normal(0, 1, (8, 32)) / math.sqrt(8), _rng.normal(0, 0.5, 32)
_w2 = _rng.normal(0, 1, (32, 1)) / math.sqrt(32)
_rx = _rng.normal(0, 1, (1536, 8))
_ry = np.tanh(_rx @ _w1 + _b1) @ _w2 + 0.05 * _rng.normal(0, 1, (1536, 1))
REGRESSION = _fit(torch.tensor(_rx, dtype=torch.float32), torch.tensor(_ry, dtype=torch.float32), [8, 64, 1],
                  torch.nn.functional.mse_loss)
_run = {"known": DIGITS, "next": 0}
def init_state(param):
    if tuple(param.shape) in ((64, 64), (64, 8)):  # a run's first layer: digits or the regression
        _run["known"], _run["next"] = (DIGITS if param.shape[1] == 64 else REGRESSION), 0
    _run["next"] += 1
    return {"known": _run["known"][_run["next"] - 1].clone()}
def update(param, grad, state, step, hp):
    return state["known"].clone()
"""


def test_weights_known_in_advance_fit_nothing_under_the_secret(honest: Evaluation) -> None:
    """On the published data the memorised weights beat honest AdamW (the attack is real); under
    the stage's secret (pixels, labels, teacher and initialisation drawn from it) they score no
    better than AdamW does."""
    public_honest, public_attack = _run(ADAMW, public=True), _run(MEMORISED, public=True)
    assert public_honest.score is not None and public_attack.score is not None
    assert public_attack.score > 2 * public_honest.score, (public_attack.metrics, public_honest.metrics)
    attack = _run(MEMORISED)
    assert attack.status == "valid" and attack.score is not None, attack.reason
    _no_better(attack, honest)
    assert attack.score < 0.5 * (honest.score or 0.0), attack.metrics


def test_result_written_or_writer_patched_is_never_read(honest: Evaluation) -> None:
    attack = writer_patched({"stage": "cpu", "device": "cpu", "runs": [], "score": 1000.0}, ADAMW)
    result = _run(attack)
    assert result.status == "valid" and result.score == honest.score


# Looks through its own process for the judge's data: a tensor or array shaped as a split's inputs,
# targets or labels (500 digits images, 512 regression points, ...), in the frames above `update`
# and in gc.
HUNT = r"""
import gc as _gc, sys as _sys
import numpy as _np
def _data(value):
    # inputs (rows x 64 pixels or 8 features) or integer labels, of a split of either problem
    rows = (500, 512, 1297, 1024, 1536, 1797)
    try:
        if not isinstance(value, (torch.Tensor, _np.ndarray)) or value.ndim not in (1, 2) or value.shape[0] not in rows:
            return False
        return value.shape[1] in (64, 8, 1) if value.ndim == 2 else "int" in str(value.dtype)
    except Exception:
        return False
def _hunt(where):
    found = []
    frame = _sys._getframe()
    while frame is not None:
        found += [v for v in list(frame.f_locals.values()) if _data(v)]
        frame = frame.f_back
    found += [obj for obj in _gc.get_objects() if _data(obj)]
    for name in ("judge", "od_judge", "__main__"):
        module = _sys.modules.get(name)
        if module is not None and hasattr(module, "digits_data"):
            found.append(module)
    if found:
        print("SNOOP", where, len(found), file=_sys.stderr)
"""


def test_the_rule_finds_no_data_in_its_frames_gc_or_modules(honest: Evaluation) -> None:
    attack = (
        ADAMW
        + HUNT
        + "_hunt('import')\n_update = update\n"
        + "def update(param, grad, state, step, hp):\n"
        + "    if step in (1, 59):\n        _hunt(f'step {step}')\n"
        + "    return _update(param, grad, state, step, hp)\n"
    )
    result = _run(attack)
    assert _found(result) == [] and result.score == honest.score


@needs_separation
def test_the_rule_reaches_no_judge_file_and_writes_no_judge_result(honest: Evaluation) -> None:
    attack = SNOOP + "_snoop(['spec.json', 'judge.py'], {'stage': 'cpu', 'device': 'cpu', 'runs': []})\n" + ADAMW
    result = _run(attack)
    assert _found(result) == [] and result.score == honest.score


def test_a_tensor_that_records_its_uses_sees_only_the_rule(honest: Evaluation) -> None:
    """A returned tensor subclass that reports every operation it meets: only its numbers cross the
    channel, so it never meets the judge's model or the validation pass."""
    attack = (
        ADAMW
        + """
import sys
class Spy(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        for a in list(args) + list((kwargs or {}).values()):
            if type(a) is torch.Tensor and a.ndim == 2 and a.shape[0] in (500, 512):
                print("SNOOP spy", func.__name__, file=sys.stderr)
        return super().__torch_function__(func, types, args, kwargs)
_update = update
def update(param, grad, state, step, hp):
    return _update(param, grad, state, step, hp).as_subclass(Spy)
"""
    )
    result = _run(attack)
    assert _found(result) == [] and result.score == honest.score


def test_warm_starting_one_run_from_another_finds_no_finished_run(honest: Evaluation) -> None:
    """Runs train side by side: no run has final weights when another starts, so a rule that would
    start each run from the last weights it saw of that shape starts from nothing better."""
    attack = (
        ADAMW
        + """
import sys
LAST = {}
_update = update
def update(param, grad, state, step, hp):
    key = tuple(param.shape)
    if step == 1 and key in LAST and LAST[key][0] > 1:
        print("SNOOP warm start", file=sys.stderr)
        return LAST[key][1].clone()
    new = _update(param, grad, state, step, hp)
    LAST[key] = (step, new.clone())
    return new
"""
    )
    result = _run(attack)
    assert _found(result) == [] and result.score == honest.score


@pytest.mark.parametrize(
    ("returned", "status", "why"),
    [
        ("torch.full_like(param, float('nan'))", "invalid", "diverged"),
        ("param * 1e30", "invalid", "not finite"),
        ("param.double() * 1e300", "invalid", "not finite"),
        ("param.sum()", "invalid", "must return a tensor of shape"),
        ("param.reshape(-1)", "invalid", "must return a tensor of shape"),
        ("param.tolist()", "invalid", "must return a tensor of shape"),
        ("None", "invalid", "must return a tensor of shape"),
    ],
)
def test_tensors_that_are_not_finite_or_misshapen_are_refused(returned: str, status: str, why: str) -> None:
    signature = "def update(param, grad, state, step, hp):\n"
    program = f"import torch\ndef init_state(param):\n    return {{}}\n{signature}    return {returned}\n"
    result = _run(program)
    assert result.status == status and result.reason is not None and why in result.reason, result.reason


@pytest.mark.parametrize(
    ("forged", "why"),
    [
        ("lambda self, grads, step: {i: b[:-4] for i, b in grads.items()}", "float32 values as bytes, got"),
        ("lambda self, grads, step: {i: [b] for i, b in grads.items()}", "float32 values as bytes, got list"),
        ("lambda self, grads, step: {i: b + b for i, b in grads.items()}", "float32 values as bytes, got"),
        ("lambda self, grads, step: {0: b'', 7: b''}", "must return the new tensors of runs"),
        ("lambda self, grads, step: 1.0", "must return the new tensors of runs"),
    ],
)
def test_a_rewritten_stepper_is_checked_by_the_judge(forged: str, why: str) -> None:
    """clade_stepper.py is the candidate's: the judge trusts no value it returns."""
    program = ADAMW + f"\nimport clade_stepper\nclade_stepper.Stepper.step = {forged}\n"
    result = _run(program)
    assert result.status == "invalid" and result.reason is not None and why in result.reason, result.reason


def test_a_rule_that_dies_raises_or_stalls_is_invalid_with_the_reason() -> None:
    cases = {
        "import os\n    os._exit(0)": "process ended",
        "raise KeyError('boom')": "KeyError: 'boom'",
        "import time\n    time.sleep(od_judge_limit + 5)": "took longer than",
    }
    for body, why in cases.items():
        program = (
            f"od_judge_limit = {_judge_limit()}\n"
            "def init_state(param):\n    return {}\n"
            f"def update(param, grad, state, step, hp):\n    {body}\n"
        )
        result = _run(program)
        assert result.status == "invalid" and result.reason is not None and why in result.reason, (body, result.reason)


def _judge_limit() -> float:
    text = (HERE / "judge.py").read_text()
    return float(text.split("PER_CALL_S = ")[1].split("\n")[0])


@pytest.mark.parametrize("setting", od.SETTINGS)
def test_the_candidates_directory_holds_only_its_program_the_stepper_and_the_channel(setting: str) -> None:
    task = od.OptimizerDiscovery(setting)
    assert task.judged
    for stage in task.stages():
        job = task.job(task.seed_files(), stage)
        assert job.candidate is not None
        assert set(job.candidate.files) == {task.main_file, "clade_stepper.py", "clade_channel.py"}
        assert {"judge.py", "spec.json"} <= set(job.files) and task.main_file not in job.files
