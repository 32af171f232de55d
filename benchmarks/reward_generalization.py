"""How well each shipped reward generalizes: ranking accuracy in- and out-of-domain, to results/reward_generalization.jsonl.

    python -m benchmarks.reward_generalization [--rewards scene clip ...] [--prompts-per-suite 500]
                                               [--images-per-prompt 4] [--seed 0]

For every reward, :func:`cotimage.rewards.generalization`: pairwise ranking accuracy against
the checker on base-generator images of ``shapes/compbench-val`` (in-domain) and
``shapes/geneval`` (out-of-domain), with 95% intervals (all rewards rank the same images),
then split by kind of pair: one image passes every criterion, or both fail.
Checks the issue's bars: every learned model ranks in-domain pairs at >= 0.80, and the
generalization variants' out-of-domain intervals do not overlap.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import append_result
from cotimage import rewards
from cotimage.cli import parse_count
from cotimage.rewards.generalization import DEFAULT_SUITES, table

LEARNED = ("clip", "pref", "pref-narrow", "orm")
IN_DOMAIN_BAR = 0.80
#: The generalization variants: (diverse, narrow).
VARIANTS = ("pref", "pref-narrow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rewards", nargs="+", default=list(rewards.SHIPPED))
    parser.add_argument("--prompts-per-suite", type=parse_count, default=500)
    parser.add_argument("--images-per-prompt", type=parse_count, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    results = [
        rewards.generalization(spec, DEFAULT_SUITES, args.prompts_per_suite, args.images_per_prompt, args.seed)
        for spec in args.rewards
    ]
    print(table(results), end="\n\n")
    print(table(results, by_pair_kind=True), end="\n\n")
    by_name = {r.reward: r for r in results}
    inside, outside = DEFAULT_SUITES
    for name in LEARNED:
        if name in by_name:
            value = by_name[name].accuracy[inside].mean
            print(f"{name}: in-domain {value:.3f} (bar >= {IN_DOMAIN_BAR}: {'ok' if value >= IN_DOMAIN_BAR else 'BELOW BAR'})")
    if all(name in by_name for name in VARIANTS):
        diverse, narrow = (by_name[name].accuracy[outside] for name in VARIANTS)
        separated = diverse.low > narrow.high
        print(f"{VARIANTS[0]} - {VARIANTS[1]} out-of-domain: {diverse.mean - narrow.mean:+.3f}; intervals "
              f"{'do not overlap (ok)' if separated else 'OVERLAP (below bar)'}")
    figures = {
        "prompts_per_suite": args.prompts_per_suite,
        "images_per_prompt": args.images_per_prompt,
        "seed": args.seed,
        "seconds": time.perf_counter() - start,
        "results": [r.to_dict() for r in results],
    }
    print(f"appended to {append_result('reward_generalization', figures)}")


if __name__ == "__main__":
    main()
