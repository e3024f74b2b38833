"""How much one split of the queries can say about the fusion sweep's choice: the same searches
scored again on many random halvings (FusionSweep.resplit), no service needed.

    spread = halvings(report.sweep)   # {"rounds", "seed", "reached", "mean_gap", "worst_gap",
                                      #  "chosen": {setting: times chosen, the 3 most often}}
"""
from __future__ import annotations

import random
import statistics
from collections import Counter

from client.fusion_sweep import FusionSweep

HALVINGS = 200


def halvings(sweep: FusionSweep, rounds: int = HALVINGS, seed: int = 0) -> dict:
    """The sweep's choice on `rounds` random halvings of the same searches: how often it reached
    the best single mode on the report half, the mean and worst gap, the settings chosen most."""
    rng, order = random.Random(seed), list(sweep.listing)
    gaps, chosen = [], Counter()
    for _ in range(rounds):
        rng.shuffle(order)
        again = sweep.resplit(order)
        gaps.append(again.headline()["hybrid_best"] - again.best_single())
        chosen[again.best] += 1
    return {"rounds": rounds, "seed": seed, "reached": sum(g >= 0 for g in gaps) / rounds,
            "mean_gap": round(statistics.fmean(gaps), 4), "worst_gap": round(min(gaps), 4),
            "chosen": dict(chosen.most_common(3))}
