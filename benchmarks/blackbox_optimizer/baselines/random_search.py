"""Random search: uniform samples in the box, in batches of 50 (reference baseline)."""

import numpy as np


class Optimizer:
    def __init__(self, dim, lower, upper, budget, seed):
        self.dim, self.lower, self.upper = dim, lower, upper
        self.rng = np.random.default_rng(seed)

    def ask(self):
        return self.rng.uniform(self.lower, self.upper, size=(50, self.dim))

    def tell(self, points, values):
        pass
