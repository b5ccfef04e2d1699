"""RL objective discovery: evolve the drift of PPO's policy objective, judged by returns.

The setting of Discovered Policy Optimisation (Lu et al., "Discovered Policy Optimisation",
NeurIPS 2022): in Mirror Learning form, PPO maximises mean(r A - drift(r, A)) with r the
probability ratio and A the advantage, and PPO-clip's drift is relu((r - clip(r, 1 +- eps)) A);
LPO meta-learned the drift and DPO is its closed form. Temporally-Aware LPO (Jackson et al.,
"Discovering Temporally-Aware Reinforcement Learning Algorithms", ICLR 2024) also feeds the
drift the training progress, so here the evolved program is `drift(ratio, advantage, progress)`
(JAX, traced), and everything else of PPO (PureJaxRL-style, see judge.py) is fixed.

Judged (privilege separation, see `benchmarks.task.Task.judged`): the judge (judge.py, trusted)
owns the gymnax environments and their seeds, the actor and critic, Adam, the rollouts, GAE, the
minibatches and the count of returns. The drift only enters PPO through the probability ratios,
so per minibatch step the judge sends the candidate's side (drift.py, shipped as
`clade_drift.py`) the ratios and normalised advantages of every seed and the progress, and hears
back `d sum(drift) / d ratio`; its policy loss `-mean(ratio * adv) + mean(stop_gradient(g) *
ratio)` has exactly the gradient of `-mean(ratio * adv - drift)`, so the update is PPO's with the
candidate's drift (PPO-clip's figures are unchanged to the last bit on seeds 0 to 3). The
candidate never sees an observation, a parameter, a seed or a return; a reply of the wrong shape
or not finite in float32, a drift that drives the parameters non-finite, an answer slower than
`CALL_TIMEOUT_S` (`COMPILE_TIMEOUT_S` for the first, which compiles the drift) is a fault and the
node is invalid.

Settings (chosen at construction, by default from the environment: `CLADE_DEVICE=cuda` selects
the GPU setting, anything else or nothing the CPU one):

- **cpu** (one stage, `cartpole`; CI runs it): gymnax CartPole-v1, 4 seeds drawn from the
  stage's secret (`env_seeds`; 0 to 3 without one) trained at once (vmap) for
  `CARTPOLE["total_steps"]` steps each. A seed's return is the mean return of the episodes that
  ended in the last quarter of training; `mean_return` averages the seeds, and the score
  `normalised_return` is `mean_return / PPO_CARTPOLE_RETURN`, PPO-clip's figure
  (`baselines/ppo_clip.py`) on seeds 0 to 3, so PPO-clip scores about 1.0 (1.0 exactly on those
  seeds; on secret seeds it moves with the draw, and every node of a run meets the same draw).
  CartPole caps returns at 500, so the score's ceiling is 500 / PPO_CARTPOLE_RETURN.
- **gpu** (`gpu = True`): the `cartpole` stage as a gate (`GATE`), then `minatar`: Breakout,
  SpaceInvaders, Asterix and Freeway (gymnax MinAtar), 4 secret seeds, 1e7 steps each with
  the larger batch of Lu et al.; `normalised_return` is the mean over games of the return
  divided by the published PPO figure in `MINATAR_PPO_RETURN` (69.9, 180.9, 17.0, 61.8). Not
  measured here: no GPU was available when the task was written, so PPO-clip's own score in this
  setting (which should be near 1.0) is still to be checked on one. The candidate's side computes
  its drift on the CPU (a minibatch of ratios is small; the judge keeps the GPU).

Determinism: every seed's randomness comes from its JAX key, derived from the stage's secret
(stored with the evaluation, so a replay meets the same seeds); on CPU (one XLA thread) an
evaluation repeats exactly on one machine (`tolerance`), and the baselines' declared figures
hold within `Baseline.abs_tol` across JAX versions (a different XLA build changes rounding,
and RL training amplifies it).

Trust: besides the separation above, the host computes every metric from per-update sums of
finished-episode returns and episode counts, and rejects a result with the wrong shape or
seeds, a non-finite or negative sum, a sum above `max_return` per episode, or a count above the
rollout's size. Task version: before the judge, the drift ran inside the harness on seeds 0 to
3; a node evaluated then replays on the seeds of its recorded secret, and `clade replay` says
the task changed (its content hash did). A drift is still free to keep state between calls in
its own process (it only ever sees ratios and advantages).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np

from benchmarks.task import Baseline, Check, Stage, Task, TaskError, fault
from sandboxes.base import PYTHON, Limits

SETTINGS = ("cpu", "gpu")
FINAL_FRACTION = 0.25
"""A seed's return is the mean over the episodes that ended in this last fraction of training."""

PPO: dict[str, Any] = {
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "vf_coef": 0.5,
    "ent_coef": 0.01,
    "max_grad_norm": 0.5,
    "hidden": 64,
    "anneal_lr": True,
}
CARTPOLE: dict[str, Any] = PPO | {
    "env": "CartPole-v1",
    "seeds": [0, 1, 2, 3],
    "total_steps": 200_000,
    "num_envs": 8,
    "num_steps": 128,
    "epochs": 4,
    "minibatches": 4,
    "lr": 2.5e-4,
    "max_return": 500.0,
}
MINATAR_GAMES = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar")
MINATAR: dict[str, Any] = PPO | {
    "seeds": [0, 1, 2, 3],
    "total_steps": 10_000_000,
    "num_envs": 64,
    "num_steps": 128,
    "epochs": 4,
    "minibatches": 8,
    "lr": 5e-3,
    "max_return": math.inf,
}

PPO_CARTPOLE_RETURN = 278.6015112248621
"""PPO-clip's `mean_return` on the `cartpole` stage (`clade eval`, jax 0.9.2 CPU)."""

MINATAR_PPO_RETURN = {
    "Breakout-MinAtar": 69.9,
    "SpaceInvaders-MinAtar": 180.9,
    "Asterix-MinAtar": 17.0,
    "Freeway-MinAtar": 61.8,
}
"""Published PPO returns on MinAtar (as quoted in Cladeforge issue 7), the GPU setting's norm."""

GATE = 0.5
"""In the GPU setting, the `cartpole` score a drift needs before it gets the MinAtar runs."""
CALL_TIMEOUT_S = 10.0
"""The judge's limit on one answer of the candidate (one minibatch's drift gradient)."""
COMPILE_TIMEOUT_S = 60.0
"""The judge's limit on the candidate's first answer, which traces and compiles the drift."""

PACKAGES = {
    "cpu": ("jax==0.9.2", "jaxlib==0.9.2", "gymnax>=1.0,<1.1", "six"),
    "gpu": ("jax[cuda12]==0.9.2", "gymnax>=1.0,<1.1", "six"),
}
"""What the sandbox image needs per setting. JAX is pinned: the reference returns move by several
per cent between JAX releases (278.6 with 0.9.2, 302.1 with 0.10.2), and jaxlib 0.10.1 and 0.10.2's
CPU runtime deadlock on this harness's vmapped PPO (every thread idle; cf. jax-ml/jax#39257).
`six`: gymnax 1.0.1 imports it (utils/load_mnist.py) without declaring it."""
NON_FINITE = ("nan", "inf", "-inf")


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def setting_from_env() -> str:
    return "gpu" if os.environ.get("CLADE_DEVICE", "").lower() in ("cuda", "gpu") else "cpu"


def env_seeds(secret: int | None, count: int) -> list[int]:
    """The seeds of a stage's training runs: drawn from the stage's secret (31 bits each, what
    `jax.random.PRNGKey` takes), or 0, 1, ... without one (a task's declared cascade)."""
    if secret is None:
        return list(range(count))
    return [int(s) >> 1 for s in np.random.SeedSequence(secret).generate_state(count, dtype=np.uint32)]


def stage_runs(stage: str, secret: int | None = None) -> list[dict[str, Any]]:
    """The training runs (one per environment, all seeds) of a stage, as the judge reads them."""
    if stage == "cartpole":
        return [CARTPOLE | {"seeds": env_seeds(secret, len(CARTPOLE["seeds"]))}]
    seeds = env_seeds(secret, len(MINATAR["seeds"]))
    return [MINATAR | {"env": game, "seeds": seeds} for game in MINATAR_GAMES]


def updates(run: Mapping[str, Any]) -> int:
    return int(run["total_steps"]) // (int(run["num_envs"]) * int(run["num_steps"]))


def _matrix(values: Any, rows: int, cols: int, what: str) -> list[list[Any]]:
    if not isinstance(values, list) or len(values) != rows:
        raise ValueError(f"{what} must have one row per seed ({rows})")
    for row in values:
        if not isinstance(row, list) or len(row) != cols:
            raise ValueError(f"{what} must have one value per PPO update ({cols}) in each row")
    return values


def seed_returns(run: Mapping[str, Any], plan: Mapping[str, Any]) -> list[float]:
    """Each seed's mean return over the last `FINAL_FRACTION` of training; ValueError if malformed."""
    rows, cols, where = len(plan["seeds"]), updates(plan), plan["env"]
    sums = _matrix(run["return_sum"], rows, cols, f"{where}: return_sum")
    counts = _matrix(run["episodes"], rows, cols, f"{where}: episodes")
    rollout = plan["num_envs"] * plan["num_steps"]
    tail = max(1, math.ceil(FINAL_FRACTION * cols))
    returns = []
    for seed, sum_row, count_row in zip(plan["seeds"], sums, counts, strict=True):
        for i, (total, count) in enumerate(zip(sum_row, count_row, strict=True)):
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= rollout:
                raise ValueError(f"{where} seed {seed} update {i}: episode count {count!r} is not in [0, {rollout}]")
            if total in NON_FINITE or isinstance(total, bool) or not isinstance(total, (int, float)):
                raise ValueError(f"{where} seed {seed} update {i}: return sum {total!r} is not a finite number")
            bound = plan["max_return"] * count if count else 0.0
            if not math.isfinite(total) or not 0.0 <= total <= bound:
                raise ValueError(
                    f"{where} seed {seed} update {i}: return sum {total!r} is impossible for {count} episodes"
                )
        finished = sum(count_row[-tail:])
        if finished == 0:
            raise ValueError(f"{where} seed {seed}: no episode ended in the last {tail} updates")
        returns.append(sum(sum_row[-tail:]) / finished)
    return returns


def check_stage(raw: Any, stage: str, planned: Sequence[Mapping[str, Any]] | None = None) -> Check:
    """Validate a stage's raw result and compute its metrics (normalised as the stage says)."""
    planned = stage_runs(stage) if planned is None else planned
    faulted = fault(raw)
    if faulted is not None:
        return faulted
    if not isinstance(raw, dict) or set(raw) != {"stage", "device", "runs"} or raw["stage"] != stage:
        return Check.invalid(f"result must be {{stage: {stage!r}, device, runs: [...]}}")
    runs = raw["runs"]
    if not isinstance(runs, list) or len(runs) != len(planned):
        return Check.invalid(f"expected {len(planned)} runs (one per environment)")
    metrics: dict[str, float] = {}
    normalised = []
    try:
        for run, plan in zip(runs, planned, strict=True):
            keys = {"env", "seeds", "return_sum", "episodes"}
            if not isinstance(run, dict) or set(run) != keys or run["env"] != plan["env"]:
                raise ValueError(f"run {plan['env']} must have exactly the keys {sorted(keys)}, in the planned order")
            if run["seeds"] != plan["seeds"]:
                raise ValueError(f"{plan['env']}: seeds {run['seeds']!r} are not the planned {plan['seeds']!r}")
            returns = seed_returns(run, plan)
            mean = sum(returns) / len(returns)
            game = plan["env"].split("-")[0].lower()
            reference = PPO_CARTPOLE_RETURN if stage == "cartpole" else MINATAR_PPO_RETURN[plan["env"]]
            metrics[f"return_{game}"] = mean
            metrics[f"normalised_{game}"] = mean / reference
            normalised.append(mean / reference)
    except ValueError as exc:
        return Check.invalid(str(exc))
    if stage == "cartpole":
        metrics["mean_return"] = metrics["return_cartpole"]
    metrics["normalised_return"] = sum(normalised) / len(normalised)
    return Check(valid=True, score=metrics["normalised_return"], metrics=metrics)


class RlObjective(Task):
    name = "rl_objective"
    metric = "normalised_return"
    tolerance = 1e-9
    judged = True
    call_timeout_s = CALL_TIMEOUT_S
    compile_timeout_s = COMPILE_TIMEOUT_S
    minatar_device = "gpu"
    """Where the judge trains the MinAtar stage (tests run a cut-down one on "cpu")."""

    def __init__(self, setting: str | None = None) -> None:
        self.setting = setting or setting_from_env()
        if self.setting not in SETTINGS:
            raise TaskError(f"unknown rl_objective setting {self.setting!r}; choose one of {SETTINGS}")
        self.gpu = self.setting == "gpu"
        self.packages = PACKAGES[self.setting]
        # XLA maps far more address space than it uses; on a GPU, CUDA maps tens of GiB more.
        self.limits = Limits(memory_mb=256 * 1024) if self.gpu else Limits(memory_mb=8192)
        where = "gymnax CartPole" if not self.gpu else "MinAtar Breakout, SpaceInvaders, Asterix and Freeway"
        self.description = (
            "RL objective discovery. Evolve the drift of PPO's policy objective, "
            "`drift(ratio, advantage, progress) -> per-sample penalty` in jax.numpy: PPO maximises "
            "mean(ratio * advantage - drift), with advantages normalised per minibatch and progress the "
            "fraction of training done; PPO-clip's drift is relu((ratio - clip(ratio, 0.8, 1.2)) * "
            f"advantage). Judged by the final returns of PPO on {where}, normalised by PPO-clip's "
            "(higher is better)."
        )

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        if not self.gpu:
            return (Stage("cartpole", timeout_s=300),)
        return (Stage("cartpole", timeout_s=300, threshold=GATE), Stage("minatar", timeout_s=3600))

    def planned(self, stage: Stage) -> list[dict[str, Any]]:
        """The stage's training runs, with the seeds its secret draws."""
        return stage_runs(stage.name, stage.secret)

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "judge.py", stage.name]

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        device = self.minatar_device if stage.name == "minatar" else "cpu"
        timeouts = {"call_s": self.call_timeout_s, "compile_s": self.compile_timeout_s}
        spec = {"device": device, "runs": self.planned(stage), "timeouts": timeouts}
        return {"judge.py": _text("judge.py").encode(), "spec.json": json.dumps(spec).encode()}

    def candidate_files(self, stage: Stage) -> dict[str, bytes]:
        return {"clade_drift.py": _text("drift.py").encode()}

    def check(self, stage: Stage, raw: Any) -> Check:
        return check_stage(raw, stage.name, self.planned(stage))

    def combine(self, checks: Sequence[Check]) -> Check:
        if len(checks) == 1:
            return checks[0]
        gate, minatar = checks
        metrics = {f"cartpole_{k}": v for k, v in gate.metrics.items()} | dict(minatar.metrics)
        return Check(valid=True, score=minatar.score, metrics=metrics)

    def baselines(self) -> Sequence[Baseline]:
        if self.gpu:  # not measured on a GPU yet: nothing to declare
            return (Baseline("ppo_clip", _text("baselines/ppo_clip.py"), {}),)
        return tuple(
            Baseline(
                name, _text(f"baselines/{name}.py"), expected, abs_tol=abs_tol, secrets={"cartpole": BASELINE_SECRET}
            )
            for name, (expected, abs_tol) in BASELINE_METRICS.items()
        )


BASELINE_SECRET = 1
"""The cartpole stage's secret the baselines' figures were measured with (the first one tried)."""

BASELINE_METRICS: dict[str, tuple[dict[str, float], float]] = {
    "ppo_clip": ({"normalised_return": 1.006263}, 0.05),
    "dpo": ({"normalised_return": 1.025262}, 0.1),
}
"""What each baseline reaches in the CPU setting with BASELINE_SECRET's seeds (`evaluate`, jax
0.9.2 CPU; on one machine an evaluation repeats exactly), with the slack allowed across JAX/XLA
versions and CPUs (XLA picks kernels by CPU feature: DPO, normalised by PPO's return on the same
machine, moved by more than 0.05 from one machine to another). Other draws move the figures too:
PPO-clip scored 0.962, 1.006 and 1.085 on secrets 3, 1 and 2, and 1.0 on seeds 0 to 3; DPO
1.013 on seeds 0 to 3 (0.980 when the drift ran inside the harness: rounding, amplified)."""
