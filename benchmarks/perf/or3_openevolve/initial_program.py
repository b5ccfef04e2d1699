"""Online bin packing (FunSearch, OR3): choose a bin for each arriving item."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score every bin that can hold `item` (its remaining capacity); the highest score wins."""
    remaining = bins - item
    return -remaining  # best fit


# EVOLVE-BLOCK-END
