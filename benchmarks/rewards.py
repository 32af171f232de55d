"""Reward-model throughput: images/s of each shipped reward at batch 64, appended to results/rewards.jsonl.

    python -m benchmarks.rewards [--rewards scene clip ...] [--batch 64] [--repeats 5] [--threads N]

Each reward scores one batch of base-generator images for ``shapes/compbench-val`` prompts,
taken in turn from each of its categories (cycling through the suite for a larger batch);
the figure is the batch size over the fastest of ``--repeats`` timed calls (after a warm-up).
Prints a table and appends one JSON line (time, commit, machine, figures).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import append_result, best_time, mixed_prompts
from cotimage import generators, rewards
from cotimage.cli import parse_count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rewards", nargs="+", default=list(rewards.SHIPPED), help="reward specs to time")
    parser.add_argument("--batch", type=parse_count, default=64)
    parser.add_argument("--repeats", type=parse_count, default=5)
    parser.add_argument("--threads", type=parse_count, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    prompts = mixed_prompts("shapes/compbench-val", args.batch)
    images = generators.load("shapes").generate([r.text for r in prompts], seed=args.seed)
    figures = {}
    for spec in args.rewards:
        rm = rewards.make(spec)
        figures[spec] = len(images) / best_time(lambda rm=rm: rm(images, prompts), args.repeats)

    width = max(len(spec) for spec in figures)
    print(f"| {'reward':{width}s} | images/s (batch {args.batch}, {torch.get_num_threads()} torch threads) |")
    print(f"|{'-' * (width + 2)}|---:|")
    for spec, speed in figures.items():
        print(f"| {spec:{width}s} | {speed:,.0f} |")
    path = append_result("rewards", {"batch": len(images), "repeats": args.repeats, "images_per_s": figures})
    print(f"appended to {path}")


if __name__ == "__main__":
    main()
