"""First fit: the first open bin with room (reference baseline)."""

import numpy as np


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    return -np.arange(len(bins), dtype=float)
