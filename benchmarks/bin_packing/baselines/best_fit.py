"""Best fit: the bin left with the least room (reference baseline)."""

import numpy as np


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    return -(bins - item)
