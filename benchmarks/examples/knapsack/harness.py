"""Sandbox side (untrusted): pack each instance greedily with the candidate's priority and
write the chosen item indices. No score: the host's check.py computes it."""

import json
import sys

from program import priority


def pack(instance):
    order = sorted(
        range(len(instance["values"])),
        key=lambda i: priority(instance["values"][i], instance["weights"][i]),
        reverse=True,
    )
    room, chosen = instance["capacity"], []
    for i in order:
        if instance["weights"][i] <= room:
            room -= instance["weights"][i]
            chosen.append(i)
    return chosen


stage = sys.argv[1]
with open("instances.json") as handle:
    instances = json.load(handle)[stage]
with open("result.json", "w") as handle:
    json.dump({"stage": stage, "chosen": [pack(instance) for instance in instances]}, handle)
