"""The judge (trusted, its own process and uid): builds one tour per instance city by city,
asking the candidate's `select_next_node` over the channel for each step. The candidate gets the
distance matrix once per instance and the current state; it never sees the reference tours (they
stay on the host) or this process. The host checks each tour and measures its length."""

import json
import sys

import numpy as np
from clade_channel import CandidateFault, Ref, run_judge

PER_CALL_S = 5.0


def build_tour(channel, coords):
    distances = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    channel.put("distances", distances)
    start = 0
    tour, unvisited = [start], set(range(1, len(coords)))
    while unvisited:
        chosen = channel.call(
            "select_next_node", tour[-1], start, set(unvisited), Ref("distances"), timeout_s=PER_CALL_S
        )
        if type(chosen) is not int or chosen not in unvisited:
            raise CandidateFault(f"select_next_node returned {chosen!r:.60}, not an unvisited city")
        unvisited.remove(chosen)
        tour.append(chosen)
    return tour


def main():
    with open("instances.json") as handle:
        instances = json.load(handle)
    run_judge(
        sys.argv[1],
        lambda channel: {"tours": [build_tour(channel, np.array(coords, dtype=float)) for coords in instances]},
    )


if __name__ == "__main__":
    main()
