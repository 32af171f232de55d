"""The Janus-Pro path on a GPU: sampling, decoding, env rollouts and one GRPO update, timed.

    python -m benchmarks.janus [--shapes janus-pro-1b|tiny] [--device cuda] [--dtype bfloat16] [--batch 16]
                               [--gradient-checkpointing] [--decoding auto] [--baseline-decoding dynamic]

No Janus weights can be downloaded here, so the model is random (``cotimage.generators.janus.build_random``)
with Janus-Pro-1B's image-generation shapes: a 24 x 2048 Llama, 576 tokens per image from a 16,384-code VQ
decoded to 384 x 384. Random weights cost what the real ones cost. Times, all at ``--batch`` images with
Janus-Pro's guidance (weight 5, so the model runs on twice the rows):

- ``sample``: the KV-cached sampler alone (``policy.sample``) with ``--decoding`` (``auto``: each decode step
  replayed as a CUDA graph on a GPU), and with ``--baseline-decoding`` in the same process, for their ratio;
- ``decode``: VQ tokens to pixels;
- ``env``: the rollout every agent collects with, through ``CotImage-v0``'s vector env (sampling, the env's
  bookkeeping, decoding and a brightness reward), and its ratio to sample + decode;
- ``grpo``: one GRPO update (a rollout, the reference's and the policy's teacher-forced passes, a step),
  with its peak GPU memory; ``--gradient-checkpointing`` recomputes the language model's layers in the
  backward pass instead of keeping their activations.

Appends a line to benchmarks/results/janus.jsonl with the device's name and peak GPU memory.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import cotimage  # noqa: F401  (registers CotImage-v0)
from benchmarks.common import append_result, best_time
from cotimage.agents import GRPO, GRPOConfig
from cotimage.agents.common.rollout import collect
from cotimage.cli import parse_count
from cotimage.envs.core import text_of
from cotimage.generators.base import SamplingConfig
from cotimage.generators.janus import DECODINGS, DEFAULT_CFG_WEIGHT, JANUS_PRO_1B_SHAPES, JanusGenerator, build_random

SHAPES = {"janus-pro-1b": JANUS_PRO_1B_SHAPES, "tiny": {}}


def brightness(images: np.ndarray, prompts) -> np.ndarray:
    return images.mean(axis=(1, 2, 3)).astype(np.float32) / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=list(SHAPES), default="janus-pro-1b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--batch", type=parse_count, default=16)
    parser.add_argument("--repeats", type=parse_count, default=2)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute layer activations in backward")
    parser.add_argument("--decoding", choices=DECODINGS, default="auto", help="how the generator decodes")
    parser.add_argument("--baseline-decoding", choices=DECODINGS, default=None, help="also time sampling with this")
    args = parser.parse_args()
    device = torch.device(args.device)

    tick = time.perf_counter()
    model, processor = build_random(**SHAPES[args.shapes], device=device)
    gen = JanusGenerator(
        model=model.to(getattr(torch, args.dtype)),
        processor=processor,
        device=device,
        gradient_checkpointing=args.gradient_checkpointing,
        decoding=args.decoding,
    )
    build_s = time.perf_counter() - tick
    print(f"built {args.shapes} on {device} in {build_s:.1f} s", flush=True)
    params = sum(p.numel() for p in gen.policy.parameters())
    guided = SamplingConfig(cfg_weight=DEFAULT_CFG_WEIGHT)
    envs = gym.make_vec(
        "CotImage-v0", num_envs=args.batch, vectorization_mode="vector_entry_point", generator=gen, reward=brightness
    )
    envs.reset(seed=0)
    options = {"prompts": envs.prompts}
    prompts = gen.encode_prompts([text_of(p) for p in envs.prompts])
    policy = gen.policy.eval()
    tokens = policy.sample(prompts, guided, torch.Generator(device).manual_seed(0)).tokens

    def time_sampling(decoding: str) -> float:
        policy.decoding, chosen = decoding, policy.decoding
        try:
            return best_time(lambda: policy.sample(prompts, guided, torch.Generator(device).manual_seed(0)), args.repeats, device)
        finally:
            policy.decoding = chosen

    with torch.no_grad():
        sample_s = time_sampling(args.decoding)
        print(f"sample: {sample_s:.2f} s per batch", flush=True)
        baseline_s = time_sampling(args.baseline_decoding) if args.baseline_decoding else None
        if baseline_s is not None:
            print(f"sample with {args.baseline_decoding}: {baseline_s:.2f} s per batch", flush=True)
        decode_s = best_time(lambda: gen.decode(tokens), args.repeats, device)
        print(f"decode: {decode_s:.2f} s per batch", flush=True)
        env_s = best_time(lambda: collect(envs, policy, guided, torch.Generator(device).manual_seed(0), options), args.repeats, device)
        print(f"env rollout: {env_s:.2f} s per batch", flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    config = GRPOConfig(batch_size=args.batch, group_size=4, beta=0.01, cfg_weight=DEFAULT_CFG_WEIGHT, learning_rate=1e-6)
    agent = GRPO(envs, config=config, seed=0)
    grpo_s = best_time(lambda: agent.learn(args.batch, progress_bar=False), 1, device)

    n, t = args.batch, gen.num_image_tokens
    figures = {
        "shapes": args.shapes,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": args.dtype,
        "parameters_m": params / 1e6,
        "image_tokens": t,
        "image_size": gen.image_size,
        "batch": n,
        "gradient_checkpointing": args.gradient_checkpointing,
        "decoding": args.decoding,
        "resolved_decoding": policy._resolve_decoding(),
        "cfg_weight": DEFAULT_CFG_WEIGHT,
        "build_s": build_s,
        "sample_images_per_s": n / sample_s,
        "sample_tokens_per_s": n * t / sample_s,
        "baseline_decoding": args.baseline_decoding,
        "baseline_sample_images_per_s": n / baseline_s if baseline_s else None,
        "sample_speedup_vs_baseline": baseline_s / sample_s if baseline_s else None,
        "decode_images_per_s": n / decode_s,
        "env_images_per_s": n / env_s,
        "env_vs_sample_plus_decode": (sample_s + decode_s) / env_s,
        "grpo_update_s": grpo_s,
        "grpo_images_per_s": n / grpo_s,
        "peak_gpu_mib_grpo": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }
    for key, value in figures.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    print(f"appended to {append_result('janus', figures)}")


if __name__ == "__main__":
    main()
