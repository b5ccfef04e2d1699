"""Optimizer discovery: evolve the update rule that trains neural networks, judged against AdamW.

The meta-learning line this task comes from: learned optimizers (VeLO, Metz et al., "VeLO:
Training Versatile Learned Optimizers by Scaling Up", 2022) and optimizers found by program
search (Lion, Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023), and
update rules that change training dynamics (Grokfast, Lee et al., "Grokfast: Accelerated Grokking
by Amplifying Slow Gradients", 2024). The evolved program is a per-tensor rule,
`init_state(param) -> state` and `update(param, grad, state, step, hp) -> new param`, where `hp`
gives the setting's tuned AdamW `lr` and `weight_decay` as scale hints and `total_steps`.

Settings (chosen at construction, by default from the environment: `CLADE_DEVICE=cuda` selects
the GPU setting, anything else or nothing the CPU one):

- **cpu** (one stage, `cpu`; CI runs it): MLPs trained for `CPU_STEPS` steps on scikit-learn's
  bundled digits (classification) and on a seeded synthetic regression, seeds `CPU_SEEDS`.
  Metrics per problem: the mean final validation loss and (digits) accuracy over seeds, and the
  ratio `REFERENCE loss / candidate loss`; the score `vs_adamw` is the mean of those ratios, so
  tuned AdamW (`baselines/adamw.py`) scores 1.0 under `BASELINE_SECRET` and a rule reaching half
  AdamW's validation loss on both problems scores 2.0. AdamW's learning rate and weight decay per
  problem were tuned by grid search on the published data and other seeds (`python -m
  benchmarks.optimizer_discovery.tune`), and `REFERENCE` holds what it then reaches on the
  evaluation seeds under `BASELINE_SECRET` (torch 2.13.0 CPU). Every evaluation draws its own
  secret, and so its own problems (below): on other secrets AdamW scored between
  `ADAMW_SPREAD` = 0.90 and 1.26 (10 secrets, mean 1.05), mostly from the regression's teacher;
  nodes of one run share a secret (`Stage.secret`), so they compare exactly.
- **gpu** (`gpu = True`): the `cpu` stage as a gate (a rule must reach `GATE` of AdamW's figure),
  then `grokking`: Grokfast's algorithmic setting, a 2-layer transformer (width 128, 4 heads)
  on a*b mod 97 with half the 9409 pairs for training, minibatches of 512, AdamW's lr 1e-3,
  weight decay 0. The judge evaluates the held-out half every 100 steps and stops at 95 %
  validation accuracy; the metric `grok_steps` is the mean over seeds of the steps it took (the
  budget, `GROKKING["steps"]`, when never reached) and the score `speedup_vs_adamw` is
  `GROKKING_ADAMW_STEPS / grok_steps`. Grokfast reports plain Adam at about 40,000 steps and
  Grokfast at about 800-900; `GROKKING_ADAMW_STEPS` holds the published 40,000 until this
  baseline is measured on a GPU (it has not been yet).

Secret problems: the host draws a secret per evaluation (`Stage.secret`, stored with it, so a
replay meets the same problems) and the judge transforms every problem with values drawn from
it: digits' 64 pixels and 10 labels are permuted (the published train/validation split stays:
drawing it too moved AdamW's validation loss threefold between secrets), the regression's
teacher network and inputs are drawn from it, grokking's operand token ids and answer classes
are permuted and its split drawn; each run's initialisation and minibatch order come from it
too. Weights known in advance (memorised, or fitted at import on the published data) then fit
nothing: `tests/benchmarks/test_forgery_optimizer.py` has such a rule beat AdamW several times
over on the published data and score far below it under a secret.

Determinism: every run is seeded from the secret (initialisation, minibatch order, data); on
CPU with one thread and torch's deterministic algorithms, an evaluation repeats to the last bit
on one machine given its secret (`tolerance`), and the baselines' declared metrics hold within `Baseline.abs_tol`
across torch builds. GPU runs are not bit-reproducible (cuBLAS reductions).

Trust (privilege separation, as the other judged tasks; see README "How scores are protected"):
the judge (`judge.py`, its own process and uid) holds the data, the models, the losses and
gradients, the step budget and the result; the candidate's process holds only the rule and its
per-tensor state (`stepper.py`, shipped as `clade_stepper.py`). Each step the judge sends every
tensor's gradient (all runs of the stage in one round trip, the runs training side by side) and
checks each new value that comes back: a float array of the tensor's shape, or the evaluation
is invalid with the reason; a non-finite value ends that run as diverged. The candidate never
sees a batch, the validation data or the judge's memory, and cannot write the result. The host
then computes every metric from the judge's raw curves, and rejects a result with missing,
extra, non-finite or out-of-range values or the wrong number of points (a rule that diverges
makes the evaluation invalid). Out of reach of the secret: the published digits images stay
what they are, so a rule that recovered the secret permutations from the gradients it is sent
(say, each pixel's mean intensity from the first layer's gradients) could still map memorised
weights onto them; read the code of a surprisingly good rule (`clade show`) before trusting it.
Task version: the secret problems changed the judge, the reference and the baselines' figures,
so the task's content hash changed: a node recorded before replays on its stored secret with a
new score (its rule trained on transformed problems) and `clade replay` notes that the task
changed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from benchmarks.task import Baseline, Check, Stage, Task, TaskError, fault
from sandboxes.base import PYTHON, Limits

SETTINGS = ("cpu", "gpu")
CPU_PROBLEMS = ("digits", "regression")
CPU_SEEDS = (0, 1, 2)
CPU_STEPS = 400
BATCH_SIZE = 64
LOG_EVERY = 20

TUNED_ADAMW: dict[str, tuple[float, float]] = {"digits": (1e-2, 0.0), "regression": (1e-2, 0.0)}
"""Per CPU problem, AdamW's (learning rate, weight decay) from the grid search in `tune.py`."""

BASELINE_SECRET = 7
"""The stage secret `REFERENCE` and the baselines' figures were measured with (of 11 secrets
tried, the one nearest the median validation loss on both problems)."""

REFERENCE: dict[str, dict[str, float]] = {
    "digits": {"val_loss": 0.0574686365822951, "val_accuracy": 0.9773333470026652},
    "regression": {"val_loss": 0.009488364060719809},
}
"""What tuned AdamW (`baselines/adamw.py`) reaches per CPU problem under `BASELINE_SECRET`, mean
over `CPU_SEEDS`."""

ADAMW_SPREAD = (0.90, 1.26)
"""The lowest and highest `vs_adamw` tuned AdamW scored on 10 other secrets (1-10 bar 7, and
20261204; mean 1.05): the score of one evaluation moves this much with the secret's problems."""

GATE = 0.25
"""In the GPU setting, the `cpu` stage's score a rule needs before it gets the grokking run."""

GROKKING: dict[str, Any] = {
    "p": 97,
    "train_fraction": 0.5,
    "batch_size": 512,
    "steps": 100_000,
    "eval_every": 100,
    "target_accuracy": 0.95,
    "seeds": (0, 1),
    "lr": 1e-3,
    "weight_decay": 0.0,
}
GROKKING_ADAMW_STEPS = 40_000.0
"""AdamW's steps to 95 % validation accuracy on the grokking run: Grokfast's published figure
for plain Adam, standing in until `baselines/adamw.py` is measured on a GPU."""

PACKAGES = {"cpu": ("torch==2.13.0", "scikit-learn"), "gpu": ("torch==2.13.0", "scikit-learn")}
"""What the sandbox image needs per setting (PyPI's torch 2.13.0 for Linux is the CUDA build;
the CPU-only wheel used in CI carries the same version number)."""

NON_FINITE = ("nan", "inf", "-inf")


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def setting_from_env() -> str:
    return "gpu" if os.environ.get("CLADE_DEVICE", "").lower() in ("cuda", "gpu") else "cpu"


def run_spec(
    problem: str, seed: int, steps: int, lr: float, weight_decay: float, secret: int | None = None
) -> dict[str, Any]:
    """One supervised run as the judge reads it; the judge transforms its data with `secret`."""
    return {
        "problem": problem,
        "seed": seed,
        "secret": secret,
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "log_every": LOG_EVERY,
        "hp": {"lr": lr, "weight_decay": weight_decay, "total_steps": steps},
    }


def cpu_runs(secret: int | None = None) -> list[dict[str, Any]]:
    return [run_spec(p, seed, CPU_STEPS, *TUNED_ADAMW[p], secret) for p in CPU_PROBLEMS for seed in CPU_SEEDS]


def grokking_runs(
    steps: int | None = None, eval_every: int | None = None, secret: int | None = None
) -> list[dict[str, Any]]:
    """The grokking runs; `steps` and `eval_every` shrink them for a CPU dry run in tests."""
    g = GROKKING
    steps, eval_every = steps or g["steps"], eval_every or g["eval_every"]
    hp = {"lr": g["lr"], "weight_decay": g["weight_decay"], "total_steps": steps}
    keys = ("p", "train_fraction", "batch_size", "target_accuracy")
    return [
        {"problem": "grokking", "seed": seed, "secret": secret, "steps": steps, "eval_every": eval_every, "hp": hp}
        | {k: g[k] for k in keys}
        for seed in g["seeds"]
    ]


def _number(value: Any, what: str, low: float = -math.inf, high: float = math.inf) -> float:
    if value in NON_FINITE:
        raise ValueError(f"{what} is not finite ({value}): the rule diverged")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} = {value!r} lies outside [{low:g}, {high:g}]")
    return float(value)


def _curve(values: Any, what: str, low: int, high: int, lo: float = 0.0, hi: float = math.inf) -> list[float]:
    """A list of `low` to `high` numbers in [lo, hi]; its values are judged first (a diverged run
    ends early, and saying that it diverged is more use than saying that it is short)."""
    numbers = [_number(v, f"{what}[{i}]", lo, hi) for i, v in enumerate(values)] if isinstance(values, list) else []
    if not isinstance(values, list) or not low <= len(values) <= high:
        count = f"{low}" if low == high else f"{low} to {high}"
        raise ValueError(f"{what} must be a list of {count} values, got {_count(values)}")
    return numbers


def _count(values: Any) -> str:
    return f"{len(values)}" if isinstance(values, list) else type(values).__name__


def parse_runs(raw: Any, stage: str, planned: Sequence[Mapping[str, Any]], keys: set[str]) -> list[dict[str, Any]]:
    """The runs of a raw result, in the planned order with exactly `keys`; ValueError if not."""
    if not isinstance(raw, dict) or set(raw) != {"stage", "device", "runs"} or raw["stage"] != stage:
        raise ValueError(f"result must be {{stage: {stage!r}, device, runs: [...]}}")
    runs = raw["runs"]
    if not isinstance(runs, list) or len(runs) != len(planned):
        raise ValueError(f"expected {len(planned)} runs, got {_count(runs)}")
    for run, plan in zip(runs, planned, strict=True):
        if not isinstance(run, dict) or set(run) != keys:
            raise ValueError(f"each run must have exactly the keys {sorted(keys)}")
        if (run["problem"], run["seed"]) != (plan["problem"], plan["seed"]):
            raise ValueError(f"run {plan['problem']} seed {plan['seed']} is missing or out of order")
    return runs


def check_cpu(raw: Any, stage: str = "cpu", planned: Sequence[Mapping[str, Any]] | None = None) -> Check:
    """Metrics of the supervised runs against `REFERENCE`."""
    planned = cpu_runs() if planned is None else planned
    keys = {"problem", "seed", "train_loss", "val_loss", "val_accuracy"}
    try:
        runs = parse_runs(raw, stage, planned, keys)
        losses: dict[str, list[float]] = {p: [] for p in CPU_PROBLEMS}
        accuracies: list[float] = []
        for run, plan in zip(runs, planned, strict=True):
            where = f"{plan['problem']} seed {plan['seed']}"
            points = plan["steps"] // plan["log_every"]
            _curve(run["train_loss"], f"{where}: train_loss", points, points)
            losses[plan["problem"]].append(_number(run["val_loss"], f"{where}: val_loss", 0.0))
            if plan["problem"] == "digits":
                accuracies.append(_number(run["val_accuracy"], f"{where}: val_accuracy", 0.0, 1.0))
            elif run["val_accuracy"] is not None:
                raise ValueError(f"{where}: val_accuracy must be null for a regression")
    except ValueError as exc:
        return Check.invalid(str(exc))
    metrics: dict[str, float] = {}
    for problem, values in losses.items():
        mean = sum(values) / len(values)
        metrics[f"val_loss_{problem}"] = mean
        metrics[f"loss_ratio_{problem}"] = REFERENCE[problem]["val_loss"] / max(mean, 1e-12)
    metrics["val_accuracy_digits"] = sum(accuracies) / len(accuracies)
    metrics["accuracy_ratio_digits"] = metrics["val_accuracy_digits"] / REFERENCE["digits"]["val_accuracy"]
    metrics["vs_adamw"] = sum(metrics[f"loss_ratio_{p}"] for p in CPU_PROBLEMS) / len(CPU_PROBLEMS)
    return Check(valid=True, score=metrics["vs_adamw"], metrics=metrics)


def check_grokking(raw: Any, planned: Sequence[Mapping[str, Any]] | None = None) -> Check:
    """Steps to the target validation accuracy, computed from the judge's evaluation curve."""
    planned = grokking_runs() if planned is None else planned
    try:
        runs = parse_runs(raw, "grokking", planned, {"problem", "seed", "val_loss", "val_accuracy"})
        steps: list[float] = []
        grokked = 0
        for run, plan in zip(runs, planned, strict=True):
            where, most = f"grokking seed {plan['seed']}", plan["steps"] // plan["eval_every"]
            accuracy = _curve(run["val_accuracy"], f"{where}: val_accuracy", 1, most, 0.0, 1.0)
            loss = _curve(run["val_loss"], f"{where}: val_loss", len(accuracy), len(accuracy))
            del loss  # validated only: a diverged run is invalid
            reached = [i for i, a in enumerate(accuracy) if a >= plan["target_accuracy"]]
            if len(accuracy) < most and not reached:
                raise ValueError(f"{where}: stopped after {len(accuracy)} evaluations without reaching the target")
            steps.append(float((reached[0] + 1) * plan["eval_every"] if reached else plan["steps"]))
            grokked += bool(reached)
    except ValueError as exc:
        return Check.invalid(str(exc))
    grok_steps = sum(steps) / len(steps)
    metrics = {
        "grok_steps": grok_steps,
        "grokked_fraction": grokked / len(steps),
        "speedup_vs_adamw": GROKKING_ADAMW_STEPS / grok_steps,
    }
    return Check(valid=True, score=metrics["speedup_vs_adamw"], metrics=metrics)


class OptimizerDiscovery(Task):
    name = "optimizer_discovery"
    metric = "vs_adamw"
    tolerance = 1e-9
    judged = True

    def __init__(self, setting: str | None = None) -> None:
        self.setting = setting or setting_from_env()
        if self.setting not in SETTINGS:
            raise TaskError(f"unknown optimizer_discovery setting {self.setting!r}; choose one of {SETTINGS}")
        self.gpu = self.setting == "gpu"
        self.packages = PACKAGES[self.setting]
        self.metric = "speedup_vs_adamw" if self.gpu else "vs_adamw"
        # The CPU setting is light; CUDA maps tens of GiB of address space, so the GPU setting
        # bounds memory loosely (the process backend's memory limit is an address-space limit).
        self.limits = Limits(memory_mb=256 * 1024, cpus=1.0) if self.gpu else Limits(memory_mb=4096)
        where = (
            "the CPU setting: small MLPs on digits and a synthetic regression"
            if not self.gpu
            else "the GPU setting: a transformer grokking a*b mod 97 (after an MLP gate)"
        )
        self.description = (
            "Optimizer discovery. Evolve a per-tensor update rule for neural-network training: "
            "`init_state(param) -> dict` and `update(param, grad, state, step, hp) -> new param` "
            "(torch tensors; `hp` has the setting's tuned AdamW `lr` and `weight_decay` and "
            f"`total_steps`). Judged on {where}, relative to tuned AdamW (higher is better)."
        )

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        if not self.gpu:
            return (Stage("cpu", timeout_s=300),)
        return (Stage("cpu", timeout_s=300, threshold=GATE), Stage("grokking", timeout_s=3600))

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        # stage.secret is None only when hashing the task: the published problems, untransformed
        grokking = stage.name == "grokking"
        runs = grokking_runs(secret=stage.secret) if grokking else cpu_runs(stage.secret)
        spec = {"device": "cuda" if grokking else "cpu", "runs": runs}
        return {"judge.py": _text("judge.py").encode(), "spec.json": json.dumps(spec).encode()}

    def candidate_files(self, stage: Stage) -> dict[str, bytes]:
        return {"clade_stepper.py": _text("stepper.py").encode()}

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "judge.py", stage.name]

    def check(self, stage: Stage, raw: Any) -> Check:
        faulted = fault(raw)
        if faulted is not None:
            return faulted
        return check_grokking(raw) if stage.name == "grokking" else check_cpu(raw, stage.name)

    def combine(self, checks: Sequence[Check]) -> Check:
        if len(checks) == 1:
            return checks[0]
        gate, grok = checks
        return Check(valid=True, score=grok.score, metrics={**gate.metrics, **grok.metrics})

    def baselines(self) -> Sequence[Baseline]:
        secrets = {stage.name: BASELINE_SECRET for stage in self.stages()}
        if self.gpu:  # not measured on a GPU yet: nothing to declare
            return (Baseline("adamw", _text("baselines/adamw.py"), {}, secrets=secrets),)
        return tuple(
            Baseline(name, _text(f"baselines/{name}.py"), expected, abs_tol=abs_tol, secrets=secrets)
            for name, (expected, abs_tol) in BASELINE_METRICS.items()
        )


BASELINE_METRICS: dict[str, tuple[dict[str, float], float]] = {
    "adamw": ({"vs_adamw": 1.0, "accuracy_ratio_digits": 1.0}, 0.05),
    "lion": ({"vs_adamw": 0.580695, "accuracy_ratio_digits": 0.995907}, 0.05),
}
"""What each baseline reaches in the CPU setting under `BASELINE_SECRET` (torch 2.13.0 CPU; on one machine
an evaluation repeats exactly), with the slack allowed across torch builds and BLAS libraries,
which move the last digits of every step and so the end of 400 steps a little."""
