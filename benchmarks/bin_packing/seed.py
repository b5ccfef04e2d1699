"""Online bin packing: choose a bin for each arriving item (FunSearch, Nature 2023)."""

import numpy as np


def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score every bin that can hold `item`; the item goes into the highest-scoring one.

    `bins` holds the remaining capacity of each bin with room for the item (fresh bins have
    the full capacity). Return one finite score per bin.
    """
    # EVOLVE-BLOCK-START
    remaining = bins - item
    # Best fit: prefer the bin the item fills most tightly.
    score = -remaining
    # Room left below `min_gap` is too small for most later items and tends to be wasted.
    # Penalising it is switched off in the seed (penalty 0): an idea for the search to try.
    min_gap, penalty = 20.0, 0.0
    sliver = (remaining > 0) & (remaining < min_gap)
    return score - penalty * sliver
    # EVOLVE-BLOCK-END
