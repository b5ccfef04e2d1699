"""Tune AdamW's learning rate and weight decay for each CPU problem (how `TUNED_ADAMW` was made).

`python -m benchmarks.optimizer_discovery.tune` trains `baselines/adamw.py` over a grid on
seeds kept apart from the evaluation seeds and prints, per problem, the pair with the lowest
mean validation loss. Needs the `torch-tasks` extra; runs in this process, not a sandbox (it
only ever runs the trusted baseline: the judge's training code, with the rule answered in this
process instead of across the channel).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.optimizer_discovery import CPU_PROBLEMS, CPU_STEPS, run_spec
from sandboxes import channel

HERE = Path(__file__).parent
TUNING_SEEDS = (100, 101, 102)
LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
WEIGHT_DECAYS = (0.0, 1e-2, 1e-1)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class InProcess:
    """The judge's end of the channel, answered in this process by a trusted rule module."""

    def __init__(self, rule: ModuleType) -> None:
        self.rule = rule
        self.handles: dict[str, Any] = {}

    def construct(self, handle: str, class_name: str, *args: Any, timeout_s: float | None = None) -> None:
        sys.modules["program"] = self.rule
        stepper = _load(HERE / "stepper.py", "clade_stepper")
        self.handles[handle] = getattr(stepper, class_name.rpartition(":")[2])(*args)

    def call(self, target: str, *args: Any, timeout_s: float | None = None) -> Any:
        handle, _, method = target.partition(".")
        return getattr(self.handles[handle], method)(*args)


def load_judge() -> ModuleType:
    """judge.py as a module (it imports the channel by its shipped name)."""
    sys.modules.setdefault("clade_channel", channel)
    return _load(HERE / "judge.py", "od_judge")


def tune() -> dict[str, tuple[float, float, float]]:
    """Per problem: (lr, weight_decay, mean validation loss) of the best grid point."""
    judge = load_judge()
    adamw = _load(HERE / "baselines" / "adamw.py", "od_adamw")
    judge.torch.set_num_threads(1)
    best: dict[str, tuple[float, float, float]] = {}
    for problem in CPU_PROBLEMS:
        for lr, weight_decay in itertools.product(LEARNING_RATES, WEIGHT_DECAYS):
            runs = [
                judge.Supervised(run_spec(problem, seed, CPU_STEPS, lr, weight_decay), "cpu") for seed in TUNING_SEEDS
            ]
            outs = judge.train(InProcess(adamw), runs, "cpu")
            losses = [out["val_loss"] if isinstance(out["val_loss"], float) else math.inf for out in outs]
            mean = sum(losses) / len(losses)
            print(f"{problem} lr={lr:g} wd={weight_decay:g}: val loss {mean:.5f}", flush=True)
            if problem not in best or mean < best[problem][2]:
                best[problem] = (lr, weight_decay, mean)
    return best


if __name__ == "__main__":
    for problem, (lr, weight_decay, loss) in tune().items():
        print(f"best {problem}: lr={lr:g} weight_decay={weight_decay:g} (val loss {loss:.5f})")
