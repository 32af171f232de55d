"""Rollout throughput through ``CotImage-v0``'s vector env vs. the raw sampling loop.

    python -m benchmarks.env_throughput [--num-envs 64] [--repeats 3]

Both sides use the shapes policy with its KV cache, the same batch and the same seed; the
env side is the rollout every agent collects with (``cotimage.agents.common.rollout``),
so it includes the env's terminal decode and reward. Prints the ratio, the terminal
decode+reward cost per image, and appends a line to benchmarks/results/env_throughput.jsonl.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import cotimage  # noqa: F401  (registers CotImage-v0)
from benchmarks.common import append_result, best_time, peak_rss_mib
from cotimage.agents.common.rollout import collect
from cotimage.cli import parse_count
from cotimage.envs.core import text_of
from cotimage.generators import SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=parse_count, default=64)
    parser.add_argument("--repeats", type=parse_count, default=3)
    parser.add_argument("--reward", default="scene")
    args = parser.parse_args()

    envs = gym.make_vec("CotImage-v0", num_envs=args.num_envs, vectorization_mode="vector_entry_point", reward=args.reward)
    policy, sampling = envs.generator.policy.eval(), SamplingConfig()
    envs.reset(seed=0)
    prompt_list = envs.prompts
    options = {"prompts": prompt_list}
    prompts = envs.generator.encode_prompts([text_of(p) for p in prompt_list])

    def env_rollout():
        return collect(envs, policy, sampling, torch.Generator().manual_seed(0), options)

    def raw_loop():
        return policy.sample(prompts, sampling, torch.Generator().manual_seed(0))

    rollout = env_rollout()
    same = torch.equal(rollout.tokens, raw_loop().tokens)
    with torch.no_grad():
        env_s = best_time(env_rollout, args.repeats)
        raw_s = best_time(raw_loop, args.repeats)
    tokens = rollout.tokens.numpy()
    decode_s = best_time(lambda: envs.generator.decode(tokens), args.repeats)
    images = envs.generator.decode(tokens)
    reward_s = best_time(lambda: envs.episodes.reward(images, prompt_list), args.repeats)
    n = args.num_envs
    figures = {
        "num_envs": n,
        "reward": args.reward,
        "env_images_per_s": n / env_s,
        "raw_images_per_s": n / raw_s,
        "env_steps_per_s": n * policy.num_image_tokens / env_s,
        "ratio_env_to_raw": raw_s / env_s,
        "terminal_decode_ms_per_image": 1e3 * decode_s / n,
        "terminal_reward_ms_per_image": 1e3 * reward_s / n,
        "ratio_env_to_raw_plus_decode_reward": (raw_s + decode_s + reward_s) / env_s,
        "same_tokens": same,
        "mean_score": float(np.mean(rollout.scores.numpy())),
        "peak_rss_mib": peak_rss_mib(),
    }
    for key, value in figures.items():
        print(f"{key:>36}: {value:.3f}" if isinstance(value, float) else f"{key:>36}: {value}")
    print(f"appended to {append_result('env_throughput', figures)}")


if __name__ == "__main__":
    main()
