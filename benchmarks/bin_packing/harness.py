"""Runs inside the sandbox (untrusted): packs each instance online with the candidate's
`priority` and writes the bin chosen for every item. The host re-checks the packing."""

import importlib.util
import json
import sys

import numpy as np


def load_priority():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.priority


def pack(items, capacity, priority):
    remaining = np.full(len(items), capacity, dtype=float)
    chosen = []
    for item in items:
        fits = np.nonzero(remaining - item >= 0)[0]
        scores = np.asarray(priority(item, remaining[fits]), dtype=float)
        if scores.shape != fits.shape:
            raise ValueError(f"priority returned shape {scores.shape}, expected {fits.shape}")
        if not np.isfinite(scores).all():  # argmax's NaN rule is not a heuristic: keep the contract
            raise ValueError(f"priority returned a non-finite score for item {item}")
        best = int(fits[int(np.argmax(scores))])
        remaining[best] -= item
        chosen.append(best)
    return chosen


def main():
    with open("instances.json") as handle:
        instances = json.load(handle)
    priority = load_priority()
    assignments = {
        name: pack(inst["items"], inst["capacity"], priority) for name, inst in instances.items()
    }
    with open("result.json", "w") as handle:
        json.dump({"stage": sys.argv[1], "assignments": assignments}, handle)


if __name__ == "__main__":
    main()
