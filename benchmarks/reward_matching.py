"""Image-text matching of each shipped reward: a render of the prompt's scene over another scene's, to results/reward_matching.jsonl.

    python -m benchmarks.reward_matching [--rewards scene clip ...] [--prompts 300] [--seed 0]

For every reward, :func:`cotimage.rewards.matching` on ``shapes/compbench-val``: prompts drawn
evenly across categories, each with a render of its own scene and of another drawn prompt's
scene; the fraction of pairs where the reward scores the own render higher (ties one half),
with a 95% interval over prompts. Ranking the base generator's images of one prompt
(:mod:`benchmarks.reward_generalization`) and telling the prompt's scene from another are
different skills: a reward can rank near-misses well and still score a wrong scene high.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import append_result
from cotimage import rewards
from cotimage.cli import parse_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rewards", nargs="+", default=list(rewards.SHIPPED))
    parser.add_argument("--suite", default="shapes/compbench-val")
    parser.add_argument("--prompts", type=parse_count, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    results = [rewards.matching(spec, args.suite, args.prompts, args.seed) for spec in args.rewards]
    categories = list(results[0].categories)
    print(f"| reward | own scene preferred ({args.suite}, {results[0].pairs} pairs) | " + " | ".join(categories) + " |")
    print("|---|---|" + "---|" * len(categories))
    for r in results:
        print(f"| {r.reward} | {r.accuracy} | " + " | ".join(f"{r.categories[c]:.2f}" for c in categories) + " |")
    figures = {
        "suite": args.suite,
        "prompts": args.prompts,
        "seed": args.seed,
        "seconds": time.perf_counter() - start,
        "results": [r.to_dict() for r in results],
    }
    print(f"appended to {append_result('reward_matching', figures)}")


if __name__ == "__main__":
    main()
