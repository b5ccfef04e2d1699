"""Greedy knapsack: the order in which items are offered to the knapsack."""


# EVOLVE-BLOCK-START
def priority(value: float, weight: float) -> float:
    """Items with a higher priority are considered first."""
    return value / weight


# EVOLVE-BLOCK-END
