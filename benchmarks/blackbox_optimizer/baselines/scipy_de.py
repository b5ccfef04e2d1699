"""Differential evolution (Storn and Price 1997) through SciPy, with default settings.

SciPy's `differential_evolution` calls the objective itself; with `vectorized=True` it asks
for whole populations, so it runs in a thread whose objective hands each population out
through `ask` and waits for `tell`. It restarts with a new seed when it converges.
"""

import queue
import threading

import numpy as np
from scipy.optimize import differential_evolution


class Optimizer:
    def __init__(self, dim, lower, upper, budget, seed):
        self.bounds = [(lower, upper)] * dim
        self.budget = budget
        self.rng = np.random.default_rng(seed)
        self.asked = queue.Queue(maxsize=1)
        self.told = queue.Queue(maxsize=1)
        self.start()

    def start(self):
        seed = int(self.rng.integers(1, 2**31))
        threading.Thread(target=self.solve, args=(seed,), daemon=True).start()

    def solve(self, seed):
        def objective(population):  # shape (dim, S): one column per point
            self.asked.put(population.T.copy())
            return self.told.get()

        differential_evolution(
            objective, self.bounds, seed=seed, vectorized=True, updating="deferred",
            maxiter=self.budget, polish=False, tol=1e-12,
        )
        self.asked.put(None)

    def ask(self):
        points = self.asked.get()
        while points is None:  # converged: start again from a new population
            self.start()
            points = self.asked.get()
        self.pending = len(points)
        return points

    def tell(self, points, values):
        padded = np.full(self.pending, np.inf)
        padded[: len(values)] = values
        self.told.put(padded)
