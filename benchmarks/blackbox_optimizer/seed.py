"""Black-box optimisation: an ask/tell optimiser for continuous functions in a box."""

import numpy as np


class Optimizer:
    """Minimise an unknown function f: [lower, upper]^dim -> R within `budget` evaluations.

    The harness calls `ask()` for a batch of points (an array of shape (k, dim)), evaluates
    them, and hands the values back through `tell(points, values)`; it stops at the budget.
    Points outside the box are clipped into it before evaluation (and told as clipped).
    """

    def __init__(self, dim: int, lower: float, upper: float, budget: int, seed: int) -> None:
        self.dim, self.lower, self.upper, self.budget = dim, lower, upper, budget
        self.rng = np.random.default_rng(seed)
        # EVOLVE-BLOCK-START
        # A (1+1) evolution strategy with the one-fifth success rule.
        self.best_x = self.rng.uniform(lower, upper, dim)
        self.best_y = np.inf
        self.sigma = 0.2 * (upper - lower)
        # EVOLVE-BLOCK-END

    def ask(self) -> np.ndarray:
        # EVOLVE-BLOCK-START
        if not np.isfinite(self.best_y):
            return self.best_x[None, :]
        return (self.best_x + self.sigma * self.rng.standard_normal(self.dim))[None, :]
        # EVOLVE-BLOCK-END

    def tell(self, points: np.ndarray, values: np.ndarray) -> None:
        # EVOLVE-BLOCK-START
        i = int(np.argmin(values))
        if values[i] < self.best_y:
            if np.isfinite(self.best_y):
                self.sigma *= 1.5
            self.best_x, self.best_y = points[i].copy(), float(values[i])
        else:
            self.sigma *= 1.5 ** -0.25
        # EVOLVE-BLOCK-END
