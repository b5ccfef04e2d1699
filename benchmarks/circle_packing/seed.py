"""Circle packing: place n disjoint circles in the unit square, maximising the sum of radii."""

import numpy as np


def pack_circles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return `(centers, radii)`: an (n, 2) array of centres and an (n,) array of radii.

    Every circle must lie inside the unit square [0, 1] x [0, 1] and no two may overlap. The
    harness calls this once, inside the task's time budget; the host checks the arrays and
    computes the sum of radii itself.
    """
    # EVOLVE-BLOCK-START
    # Start from a square grid of equal circles, then grow each radius as far as it can go.
    side = int(np.ceil(np.sqrt(n)))
    cells = [((i + 0.5) / side, (j + 0.5) / side) for j in range(side) for i in range(side)]
    centers = np.array(cells[:n], dtype=float)
    radii = max_radii(centers)
    return centers, radii
    # EVOLVE-BLOCK-END


def max_radii(centers: np.ndarray) -> np.ndarray:
    """Largest radii for fixed centres, grown greedily one circle at a time."""
    n = len(centers)
    radii = np.zeros(n)
    for i in range(n):
        x, y = centers[i]
        room = min(x, y, 1 - x, 1 - y)
        for j in range(i):
            room = min(room, np.hypot(x - centers[j, 0], y - centers[j, 1]) - radii[j])
        radii[i] = max(room, 0.0)
    return radii
