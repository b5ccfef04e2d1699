"""Runs inside the sandbox (untrusted): drives the candidate's ask/tell `Optimizer` on each
BBOB problem of the stage (through `ioh`) and writes every point it evaluated, in order. The
host re-evaluates those points itself; the values computed here only feed the optimiser."""

import importlib.util
import json
import math
import os
import sys

import ioh
import numpy as np


def load_optimizer():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Optimizer


def encode(point):
    return [x if math.isfinite(x) else repr(x) for x in map(float, point)]


def optimise(Optimizer, run, dim, lower, upper, budget):
    problem = ioh.get_problem(run["function"], instance=run["instance"], dimension=dim, problem_class=ioh.ProblemClass.BBOB)
    optimizer = Optimizer(dim=dim, lower=lower, upper=upper, budget=budget, seed=run["seed"])
    points = []
    while len(points) < budget:
        asked = np.asarray(optimizer.ask(), dtype=float)
        batch = asked.reshape(1, -1) if asked.ndim == 1 else asked
        if batch.ndim != 2 or batch.shape[1] != dim or len(batch) == 0:
            raise ValueError(f"ask() must return points of shape (k, {dim}) with k >= 1, got {asked.shape}")
        batch = np.clip(batch[: budget - len(points)], lower, upper)
        points.extend(encode(x) for x in batch)
        if not np.isfinite(batch).all():
            break  # the host rejects the run and names the point
        optimizer.tell(batch, np.asarray(problem(batch.tolist()), dtype=float))
    return points


def main():
    stage = sys.argv[1]
    with open("runs.json") as handle:
        spec = json.load(handle)
    os.remove("runs.json")  # which problems these are is not the optimiser's business
    Optimizer = load_optimizer()
    points = [
        optimise(Optimizer, run, spec["dim"], spec["lower"], spec["upper"], spec["budget"]) for run in spec["runs"]
    ]
    with open("result.json", "w") as handle:
        json.dump({"stage": stage, "points": points}, handle, allow_nan=False)


if __name__ == "__main__":
    main()
