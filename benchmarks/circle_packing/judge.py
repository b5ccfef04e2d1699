"""The judge (trusted, its own process and uid): asks the candidate's process for
`pack_circles(n)` over the channel and writes what came back, unjudged, as plain JSON data
(arrays to lists, non-finite floats as the strings "nan"/"inf"/"-inf" so the host can name
them). Only values of the channel's codec can arrive; the host parses them with bounds, checks
the packing and sums the radii itself."""

import math
import sys

import numpy as np
from clade_channel import run_judge

MAX_ITEMS = 10_000


def plain(value, depth=0):
    """JSON-safe copy of a decoded reply, bounded in depth and length."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and depth < 4:
        return [plain(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else repr(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)[:200]


def main():
    stage, n, time_limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    run_judge(stage, lambda channel: {"n": n, "returned": plain(channel.call("pack_circles", n, timeout_s=time_limit))})


if __name__ == "__main__":
    main()
