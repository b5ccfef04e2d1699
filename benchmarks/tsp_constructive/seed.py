"""Constructive TSP: build a tour one city at a time (ReEvo, NeurIPS 2024)."""

import numpy as np


def select_next_node(current_node: int, destination_node: int, unvisited_nodes: set, distance_matrix: np.ndarray) -> int:
    """Choose the next city to visit from `unvisited_nodes`.

    The tour starts and ends at `destination_node`; `current_node` is where it stands now and
    `distance_matrix[i][j]` is the Euclidean distance between cities i and j. Return one member
    of `unvisited_nodes`.
    """
    # EVOLVE-BLOCK-START
    # Nearest neighbour: go to the closest city not yet visited.
    next_node = min(unvisited_nodes, key=lambda node: distance_matrix[current_node][node])
    return next_node
    # EVOLVE-BLOCK-END
