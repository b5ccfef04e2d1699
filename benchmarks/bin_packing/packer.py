"""The candidate's side of online packing (shipped beside the program as `clade_packer.py`).

It mirrors the bins' remaining room, so the judge sends one item per call and hears one bin
index back, instead of shipping every open bin both ways. It runs with the candidate's privilege
and holds no authority: the judge keeps its own bins and refuses a bin the item does not fit."""

import sys

import numpy as np


class OnlinePacker:
    def __init__(self, capacity, n_items):
        self.priority = sys.modules["program"].priority
        self.remaining = np.full(n_items, capacity, dtype=float)

    def place(self, item):
        fits = np.nonzero(self.remaining - item >= 0)[0]
        scores = self.priority(item, self.remaining[fits])
        if isinstance(scores, list) and all(type(s) in (int, float) for s in scores):
            scores = np.asarray(scores, dtype=float)
        if not isinstance(scores, np.ndarray) or scores.dtype.kind not in "fi":
            raise TypeError(f"priority returned {type(scores).__name__}, not an array of numbers")
        if scores.shape != fits.shape:
            raise ValueError(f"priority returned shape {scores.shape}, expected {fits.shape}")
        if not np.isfinite(scores).all():  # argmax's NaN rule is not a heuristic: keep the contract
            raise ValueError(f"priority returned a non-finite score for item {item:g}")
        best = int(fits[int(np.argmax(scores))])
        self.remaining[best] -= item
        return best

    def place_all(self, items):
        """A published instance in one call (it is public: sending it item by item would hide nothing)."""
        return [self.place(float(item)) for item in items]
