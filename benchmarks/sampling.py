"""Images/s of the shapes generator: batched KV-cache sampling vs. full-prefix recomputation.

    python -m benchmarks.sampling [--batch 64] [--repeats 3]

Both samplers draw the same tokens from the same seed (checked), so the ratio compares the
same work done two ways. The batch's prompts come in turn from each ``shapes/geneval``
category (cycling through the suite for a batch larger than it). Appends a line to
benchmarks/results/sampling.jsonl.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import append_result, best_time, mixed_prompts, peak_rss_mib
from cotimage import generators
from cotimage.cli import parse_count
from cotimage.generators import SamplingConfig


def recompute_sample(policy, prompts, sampling, seed: int) -> torch.Tensor:
    """Sample like ``policy.sample`` but recompute the whole prefix for every token."""
    rng = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(len(prompts), 0, dtype=torch.long)
    for _ in range(policy.num_image_tokens):
        log_probs = policy.next_log_probs(prompts, tokens, sampling)
        tokens = torch.cat([tokens, torch.multinomial(log_probs.exp(), 1, generator=rng)], 1)
    return tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=parse_count, default=64)
    parser.add_argument("--repeats", type=parse_count, default=3)
    parser.add_argument("--cfg-weight", type=float, default=1.0)
    args = parser.parse_args(argv)

    gen = generators.load("shapes")
    policy = gen.policy.eval()
    texts = [r.text for r in mixed_prompts("shapes/geneval", args.batch)]
    batch = len(texts)
    prompts = gen.encode_prompts(texts)
    sampling = SamplingConfig(cfg_weight=args.cfg_weight)
    with torch.no_grad():
        cached = policy.sample(prompts, sampling, torch.Generator().manual_seed(0)).tokens
        same = torch.equal(cached, recompute_sample(policy, prompts, sampling, 0))
        kv = best_time(lambda: policy.sample(prompts, sampling, torch.Generator().manual_seed(0)), args.repeats)
        full = best_time(lambda: recompute_sample(policy, prompts, sampling, 0), args.repeats)
    figures = {
        "batch": batch,
        "cfg_weight": args.cfg_weight,
        "kv_cache_images_per_s": batch / kv,
        "recompute_images_per_s": batch / full,
        "kv_cache_tokens_per_s": batch * policy.num_image_tokens / kv,
        "speedup": full / kv,
        "same_tokens": same,
        "peak_rss_mib": peak_rss_mib(),
        "parameters_m": sum(p.numel() for p in policy.parameters()) / 1e6,
    }
    for key, value in figures.items():
        print(f"{key:>24}: {value:.2f}" if isinstance(value, float) else f"{key:>24}: {value}")
    print(f"appended to {append_result('sampling', figures)}")


if __name__ == "__main__":
    main()
