"""The judge (trusted, its own process and uid): packs each instance online, asking the candidate's
`priority` over the channel for one item at a time and the bins with room for it. The candidate
never sees the instance file, a future item, or this process; the host re-checks the packing."""

import json
import sys

import numpy as np
from clade_channel import CandidateFault, run_judge

PER_CALL_S = 5.0


def pack(channel, items, capacity):
    remaining = np.full(len(items), capacity, dtype=float)
    chosen = []
    for item in items:
        fits = np.nonzero(remaining - item >= 0)[0]
        scores = channel.call("priority", float(item), remaining[fits], timeout_s=PER_CALL_S)
        if isinstance(scores, list) and all(type(s) in (int, float) for s in scores):
            scores = np.asarray(scores, dtype=float)
        if not isinstance(scores, np.ndarray) or scores.dtype.kind not in "fi":
            raise CandidateFault(f"priority returned {type(scores).__name__}, not an array of numbers")
        if scores.shape != fits.shape:
            raise CandidateFault(f"priority returned shape {scores.shape}, expected {fits.shape}")
        if not np.isfinite(scores).all():  # argmax's NaN rule is not a heuristic: keep the contract
            raise CandidateFault(f"priority returned a non-finite score for item {item:g}")
        best = int(fits[int(np.argmax(scores))])
        remaining[best] -= item
        chosen.append(best)
    return chosen


def main():
    with open("instances.json") as handle:
        instances = json.load(handle)
    run_judge(
        sys.argv[1],
        lambda channel: {
            "assignments": {name: pack(channel, inst["items"], inst["capacity"]) for name, inst in instances.items()}
        },
    )


if __name__ == "__main__":
    main()
