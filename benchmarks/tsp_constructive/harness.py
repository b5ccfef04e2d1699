"""Runs inside the sandbox (untrusted): builds one tour per instance with the candidate's
`select_next_node` and writes the tours. The host checks each tour and measures its length."""

import importlib.util
import json
import sys

import numpy as np


def load_select():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.select_next_node


def build_tour(coords, select_next_node):
    distances = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    start = 0
    tour, unvisited = [start], set(range(1, len(coords)))
    while unvisited:
        chosen = select_next_node(tour[-1], start, set(unvisited), distances)
        if chosen not in unvisited:
            raise ValueError(f"select_next_node returned {chosen!r}, not an unvisited city")
        chosen = int(chosen)
        unvisited.remove(chosen)
        tour.append(chosen)
    return tour


def main():
    stage = sys.argv[1]
    with open("instances.json") as handle:
        instances = json.load(handle)
    select_next_node = load_select()
    tours = [build_tour(np.array(coords, dtype=float), select_next_node) for coords in instances]
    with open("result.json", "w") as handle:
        json.dump({"stage": stage, "tours": tours}, handle)


if __name__ == "__main__":
    main()
