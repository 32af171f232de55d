"""Write an offline DPO pair dataset: K images per prompt from the base policy, through the env.

python -m cotimage.agents.dpo.collect --out pairs/ --prompts 256 --samples-per-prompt 4 \\
    [--suite shapes/compbench-train] [--reward scene] [--generator shapes] [--seed 0]

Prompts are drawn from the suite by the env (with replacement, as training draws them); each
gets K images from the policy through the native vector env, scored by the env's reward model,
and the best and worst become a pair (groups that all score the same are dropped).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from cotimage import generators, suites
from cotimage.agents.common.agent import make_envs
from cotimage.agents.common.config import AgentConfig
from cotimage.agents.common.pairs import PairDataset, check_dataset_directory, collect_pairs
from cotimage.agents.common.rollout import Rollout, collect
from cotimage.checks import require_count, require_seed
from cotimage.cli import parse_path, parse_seed


def collect_dataset(
    num_prompts: int,
    samples_per_prompt: int = 4,
    *,
    generator: str | generators.Generator = "shapes",
    suite: str = "shapes/compbench-train",
    reward: str = "scene",
    batch_size: int = 64,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    cfg_weight: float = 1.0,
    prompts: list[str] | None = None,
    progress: bool = False,
) -> PairDataset:
    """Draw and pair ``num_prompts`` x ``samples_per_prompt`` images; the dataset's metadata says how.

    ``batch_size`` (images per env step batch) is rounded down to a multiple of
    ``samples_per_prompt`` and capped at the images needed. The sampling arguments default
    to :class:`~cotimage.agents.common.config.AgentConfig`'s, so online and offline DPO draw
    from one distribution.
    """
    k = require_count("samples_per_prompt", samples_per_prompt, least=2)
    num_prompts = require_count("prompts", num_prompts)
    batch_size = require_count("batch_size", batch_size)
    seed = require_seed("seed", seed)
    if prompts is not None and not isinstance(prompts, (list, tuple)):  # a str would be read letter by letter
        raise ValueError(f"prompts={prompts!r:.80} must be None (the suite's) or a list of prompt texts")
    if batch_size < k:
        raise ValueError(f"batch_size={batch_size} must be >= samples_per_prompt={k}")
    sampling = AgentConfig(temperature=temperature, top_k=top_k, cfg_weight=cfg_weight).sampling
    batch_size = min(batch_size // k, num_prompts) * k
    gen = generators.as_generator(generator)
    envs = make_envs("CotImage-v0", gen, batch_size, {"suite": suite, "reward": reward})
    sampler = torch.Generator(gen.device).manual_seed(seed)
    policy, was_training = gen.policy, gen.policy.training
    policy.eval()
    calls = 0

    def draw(options: dict[str, Any]) -> Rollout:
        nonlocal calls
        calls += 1
        return collect(envs, policy, sampling, sampler, options, seed=seed if calls == 1 else None)

    try:
        dataset = collect_pairs(draw, batch_size, k, num_prompts, prompts, progress=progress)
    finally:
        policy.train(was_training)
    dataset.metadata.update({
        "generator": generator if isinstance(generator, str) else type(generator).__name__,
        "suite": suite, "reward": reward, "seed": seed, "batch_size": batch_size,
        "sampling": {"temperature": sampling.temperature, "top_k": sampling.top_k, "cfg_weight": sampling.cfg_weight},
        "cotimage_version": __import__("cotimage").__version__,
    })
    return dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cotimage.agents.dpo.collect",
        description="Write a DPO pair dataset: best vs. worst of K images per prompt from the base policy, through the env.",
    )
    parser.add_argument("--out", type=parse_path, required=True, help="directory to write the dataset into")
    parser.add_argument("--prompts", type=int, default=256, help="prompts to draw from the suite (default: 256)")
    parser.add_argument("--samples-per-prompt", type=int, default=4, help="images per prompt, K (default: 4)")
    parser.add_argument("--suite", default="shapes/compbench-train", choices=suites.NAMES)
    parser.add_argument("--reward", default="scene", help="reward name (default: scene)")
    parser.add_argument("--generator", default="shapes", help="generator name (default: shapes)")
    parser.add_argument("--batch-size", type=int, default=64, help="images drawn per env batch (default: 64)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--cfg-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=parse_seed, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already at --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def collect_pairs_command(argv: list[str] | None = None) -> int:
    """``collect-pairs``: parse ``argv``, collect, save; returns the exit status."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Collect and save the dataset that parsed arguments ask for; returns the exit status."""
    try:
        check_dataset_directory(args.out, args.overwrite, "--overwrite")  # before drawing any image
        dataset = collect_dataset(
            args.prompts, args.samples_per_prompt, generator=args.generator, suite=args.suite, reward=args.reward,
            batch_size=args.batch_size, seed=args.seed, temperature=args.temperature, top_k=args.top_k,
            cfg_weight=args.cfg_weight, progress=not args.no_progress,
        )
        dataset.save(args.out, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"collect-pairs: {error}", file=sys.stderr)
        return 2
    meta = dataset.metadata
    print(
        f"wrote {len(dataset)} pairs to {args.out} ({meta['num_prompts']} prompts x {meta['samples_per_prompt']} images, "
        f"{meta['ties_dropped']} tied groups dropped; mean score {meta['score_mean']:.3f}, "
        f"mean chosen - rejected {float((dataset.chosen_scores - dataset.rejected_scores).mean()) if len(dataset) else 0:.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(collect_pairs_command())
