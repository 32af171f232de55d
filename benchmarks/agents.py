"""Train each agent on one image budget and compare shapes/compbench-val before and after.

    python -m benchmarks.agents [--agents grpo reinforce ppo dpo sb3ppo] [--total-images 4096]

Every agent starts from the shipped base generator, trains on shapes/compbench-train with the
scene reward, and is evaluated with the same seed and prompts. Prints a markdown table (before,
after with 95% intervals, wall time, training images/s, env steps/s, peak RSS) and appends a
line to benchmarks/results/agents.jsonl.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import append_result, peak_rss_mib
from cotimage.agents import registry
from cotimage.bench.settings import AGENT_SETTINGS as SETTINGS  # tuned in one place, shared with cotimage bench
from cotimage.cli import parse_count
from cotimage.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["grpo", "reinforce", "ppo", "dpo"], choices=list(SETTINGS))
    parser.add_argument("--total-images", type=parse_count, default=4096)
    parser.add_argument("--batch-size", type=parse_count, default=64)
    parser.add_argument("--eval-prompts", type=parse_count, default=100, help="compbench-val prompts per category")
    parser.add_argument("--images-per-prompt", type=parse_count, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=None, help="override every agent's learning rate")
    args = parser.parse_args()

    def score(generator):
        return evaluate(generator, "shapes/compbench-val", args.images_per_prompt, seed=args.seed, max_prompts=args.eval_prompts, progress=False)

    agents = registry()
    rows, figures = [], {"total_images": args.total_images, "eval_prompts_per_category": args.eval_prompts, "agents": {}}
    before = None
    for name in args.agents:
        cls = agents[name]
        batch = 16 if name == "sb3ppo" else args.batch_size
        settings = {**SETTINGS[name], **({"learning_rate": args.learning_rate} if args.learning_rate is not None else {})}
        config = cls.config_class(batch_size=batch, **settings)
        agent = cls(config=config, env_kwargs={"suite": "shapes/compbench-train"}, seed=args.seed)
        if before is None:
            before = score(agent.generator)
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        agent.learn(args.total_images, progress_bar=True)
        wall = time.perf_counter() - start
        after = score(agent.generator)
        images_per_s = agent.num_images / wall
        figures["agents"][name] = {
            "config": config.to_dict(),
            "before": before.overall.__dict__,
            "after": after.overall.__dict__,
            "after_categories": {k: v.__dict__ for k, v in after.categories.items()},
            "wall_s": wall,
            "images_per_s": images_per_s,
            "env_steps_per_s": images_per_s * agent.generator.num_image_tokens,
            "peak_rss_mib": peak_rss_mib(),
        }
        rows.append(f"| {name} | {before.overall} | {after.overall} | {after.overall.mean - before.overall.mean:+.3f} | {wall:.0f} | {images_per_s:.1f} | {images_per_s * 64:.0f} |")
        print(rows[-1], flush=True)
    print("| agent | before | after | gain | wall s | images/s | env steps/s |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"peak RSS {peak_rss_mib():.0f} MiB; appended to {append_result('agents', figures)}")


if __name__ == "__main__":
    main()
