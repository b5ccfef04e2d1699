"""CMA-ES (Hansen and Ostermeier 2001) through the `cma` package, with default settings, a
random start in the box, sigma0 = 2 (a fifth of the box) and restarts when it stops early."""

import cma
import numpy as np


class Optimizer:
    def __init__(self, dim, lower, upper, budget, seed):
        self.dim, self.lower, self.upper = dim, lower, upper
        self.rng = np.random.default_rng(seed)
        self.es = None
        self.restart()

    def restart(self):
        options = {
            "bounds": [self.lower, self.upper],
            "seed": int(self.rng.integers(1, 2**31)),
            "verbose": -9,
            "tolfun": 1e-11,
        }
        x0 = self.rng.uniform(self.lower, self.upper, self.dim)
        self.es = cma.CMAEvolutionStrategy(x0, 0.2 * (self.upper - self.lower), options)

    def ask(self):
        if self.es.stop():
            self.restart()
        return np.array(self.es.ask())

    def tell(self, points, values):
        if len(points) == self.es.popsize:
            self.es.tell(list(points), list(values))
