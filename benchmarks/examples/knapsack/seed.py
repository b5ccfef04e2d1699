"""Greedy knapsack: the order in which items are offered to the knapsack."""


def priority(value: float, weight: float) -> float:
    """Items with a higher priority are considered first."""
    # EVOLVE-BLOCK-START
    return value / weight
    # EVOLVE-BLOCK-END
