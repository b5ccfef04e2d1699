"""The judge (trusted, its own process and uid): packs each fresh instance online, sending the
candidate one item at a time and hearing back the bin to put it in (the candidate's side,
clade_packer.py, asks its `priority` over the bins with room). The candidate never sees the
instance file, a future item, or this process; the judge keeps the bins, refuses a bin the item
does not fit, and the host re-checks the packing. A published instance (OR3, Weibull 5k) is
public, so it goes in one call: item by item would hide nothing a program could not embed, and
the score comes from the fresh stage alone."""

import json
import sys

import numpy as np
from clade_channel import CandidateFault, run_judge

PER_CALL_S = 5.0
ONLINE_STAGE = "fresh"


def pack(channel, items, capacity, online):
    remaining = np.full(len(items), capacity, dtype=float)
    channel.construct("packer", "clade_packer:OnlinePacker", capacity, len(items), timeout_s=PER_CALL_S)
    if online:
        bins = (channel.call("packer.place", float(item), timeout_s=PER_CALL_S) for item in items)
    else:
        bins = channel.call("packer.place_all", np.asarray(items, dtype=float), timeout_s=PER_CALL_S * len(items))
        if not isinstance(bins, list) or len(bins) != len(items):
            raise CandidateFault(
                f"place_all returned {type(bins).__name__}, not {len(items)} bins",
                "place_all returned no list of bins, one per item",
            )
    chosen = []
    for item, best in zip(items, bins, strict=True):
        if type(best) is not int or not 0 <= best < len(items) or remaining[best] - item < 0:
            raise CandidateFault(f"bin {best!r} has no room for item {item:g}", "a bin chosen has no room for the item")
        remaining[best] -= item
        chosen.append(best)
    return chosen


def main():
    with open("instances.json") as handle:
        instances = json.load(handle)
    stage = sys.argv[1]
    run_judge(
        stage,
        lambda channel: {
            "assignments": {
                name: pack(channel, inst["items"], inst["capacity"], stage == ONLINE_STAGE)
                for name, inst in instances.items()
            }
        },
    )


if __name__ == "__main__":
    main()
