"""How the checker ties within GRPO's groups of base-generator images, to results/reward_ties.jsonl.

    python -m benchmarks.reward_ties [--prompts 200] [--group-size 8] [--tie-breaker pref] [--seed 0]

Prompts of ``shapes/compbench-train`` drawn evenly across categories, ``--group-size`` images
of each from the shipped base generator (one group, as GRPO samples it), scored by the checker
(``cotimage.rewards.generalization.ranking_set``) and by ``--tie-breaker``. Prints how many
groups the checker ties entirely (GRPO would learn nothing from them), how many distinct scores
a group has, the fraction of a group's pairs it ties, its smallest gap between two different
scores, and the tie-breaker's spread within a group: ``scene + w * tie_breaker`` keeps the
checker's order while ``w * spread`` stays below that smallest gap. The ``ties`` benchmark
preset trains on such sums.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import append_result
from cotimage import rewards
from cotimage.cli import parse_count
from cotimage.rewards.generalization import ranking_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=parse_count, default=200)
    parser.add_argument("--group-size", type=parse_count, default=8)
    parser.add_argument("--tie-breaker", default="pref")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    groups = ranking_set("shapes/compbench-train", args.prompts, args.group_size, args.seed)  # (P, K) checker scores
    tie_scores = rewards.make(args.tie_breaker)(groups.images, groups.prompts).reshape(groups.checker.shape)
    values = [np.unique(scores) for scores in groups.checker]
    distinct = np.array([len(v) for v in values])
    pairs = np.triu_indices(args.group_size, 1)
    tied_pairs = (groups.checker[:, pairs[0]] == groups.checker[:, pairs[1]]).mean()
    gaps = [np.diff(v).min() for v in values if len(v) > 1]
    spreads = np.ptp(tie_scores, axis=1)
    figures = {
        "prompts": len(groups.records),
        "group_size": args.group_size,
        "seed": args.seed,
        "groups_all_tied": float(np.mean(distinct == 1)),
        "distinct_scores_per_group": float(np.mean(distinct)),
        "tied_pair_fraction": float(tied_pairs),
        "smallest_gap": float(np.min(gaps)) if gaps else None,  # None: every group ties
        "smallest_gap_p5": float(np.percentile(gaps, 5)) if gaps else None,
        "tie_breaker": args.tie_breaker,
        "tie_breaker_spread_median": float(np.median(spreads)),
        "tie_breaker_spread_max": float(np.max(spreads)),
        "seconds": time.perf_counter() - start,
    }
    for key, value in figures.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    print(f"appended to {append_result('reward_ties', figures)}")


if __name__ == "__main__":
    main()
