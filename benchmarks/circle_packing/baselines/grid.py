"""Square grid: n equal circles on the smallest k x k grid that holds them (radius 1/2k).

Sum of radii n/2k: 26/12 = 2.166667 for n=26, 32/12 = 2.666667 for n=32.
"""

import numpy as np


def pack_circles(n: int) -> tuple[np.ndarray, np.ndarray]:
    side = int(np.ceil(np.sqrt(n)))
    cells = [((i + 0.5) / side, (j + 0.5) / side) for j in range(side) for i in range(side)]
    return np.array(cells[:n]), np.full(n, 0.5 / side)
