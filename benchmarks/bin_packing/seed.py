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
    # A sliver of space too small for later items is wasted; this penalty steers items
    # away from leaving one (inert at these settings: items have integer sizes).
    sliver = (remaining > 0) & (remaining < 1.0)
    score = score - 1.0 * sliver
    return score
    # EVOLVE-BLOCK-END
