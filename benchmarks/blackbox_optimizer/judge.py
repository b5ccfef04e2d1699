"""The judge (trusted, its own process and uid): owns each BBOB problem (through `ioh`) and drives
the candidate's ask/tell `Optimizer` over the channel, counting every evaluation against the
budget. The candidate gets the box, the budget and a seed; never the problem, its instance or
this process. The judge writes every point evaluated, in order; the host re-evaluates them."""

import json
import math
import sys

import ioh
import numpy as np
from clade_channel import CandidateFault, run_judge

PER_CALL_S = 5.0


def encode(point):
    return [x if math.isfinite(x) else repr(x) for x in map(float, point)]


def optimise(channel, index, run, dim, lower, upper, budget):
    problem = ioh.get_problem(
        run["function"], instance=run["instance"], dimension=dim, problem_class=ioh.ProblemClass.BBOB
    )
    handle = f"run{index}"
    channel.construct(handle, "Optimizer", dim, lower, upper, budget, run["seed"], timeout_s=PER_CALL_S)
    points: list[list[float]] = []
    while len(points) < budget:
        asked = channel.call(f"{handle}.ask", timeout_s=PER_CALL_S)
        if not isinstance(asked, np.ndarray) or asked.dtype.kind not in "fi":
            must = f"ask() must return an array of shape (k, {dim})"
            raise CandidateFault(f"{must}, got {type(asked).__name__}", must)
        asked = asked.astype(float)
        batch = asked.reshape(1, -1) if asked.ndim == 1 else asked
        if batch.ndim != 2 or batch.shape[1] != dim or len(batch) == 0:
            must = f"ask() must return points of shape (k, {dim}) with k >= 1"
            raise CandidateFault(f"{must}, got {asked.shape}", must)
        batch = np.clip(batch[: budget - len(points)], lower, upper)
        points.extend(encode(x) for x in batch)
        if not np.isfinite(batch).all():
            break  # the host rejects the run and names the point
        values = np.asarray(problem(batch.tolist()), dtype=float)
        channel.call(f"{handle}.tell", batch, values, timeout_s=PER_CALL_S)
    return points


def main():
    stage = sys.argv[1]
    with open("runs.json") as handle:
        spec = json.load(handle)
    run_judge(
        stage,
        lambda channel: {
            "points": [
                optimise(channel, i, run, spec["dim"], spec["lower"], spec["upper"], spec["budget"])
                for i, run in enumerate(spec["runs"])
            ]
        },
    )


if __name__ == "__main__":
    main()
