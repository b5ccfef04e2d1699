"""Runs inside the sandbox (untrusted): calls the candidate's `pack_circles(n)` and writes
what it returned, unjudged. Non-finite numbers are written as strings ("nan", "inf") so the
host can name them; the host checks everything and computes the sum of radii itself."""

import importlib.util
import json
import math
import sys

import numpy as np


def load_program():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encode(value):
    """JSON-safe copy: arrays to lists, non-finite floats to strings, unknown objects to repr."""
    if isinstance(value, np.ndarray):
        return encode(value.tolist())
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else repr(number)
    return repr(value)[:200]


def main():
    stage, n = sys.argv[1], int(sys.argv[2])
    returned = load_program().pack_circles(n)
    with open("result.json", "w") as handle:
        json.dump({"stage": stage, "n": n, "returned": encode(returned)}, handle, allow_nan=False)


if __name__ == "__main__":
    main()
