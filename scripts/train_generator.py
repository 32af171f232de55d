"""Train the shapes base generator and write cotimage/assets/shapes_generator.safetensors.

    python scripts/train_generator.py [--steps 1200] [--renders-per-prompt 4] [--out PATH]

Teacher-forced next-token cross-entropy on (prompt, tokenized render) pairs from
``shapes/compbench-train``, with 10% prompt dropout so the unconditional branch exists for
classifier-free guidance. The base generator is meant to leave room for RL (as Janus-Pro
does on GenEval), so training stops early by design. The script prints the loss every
``--log-every`` steps and the path it wrote; it does not evaluate: score the result with
``cotimage eval --weights PATH`` (``shapes/compbench-val`` and ``shapes/geneval`` by default).

The defaults rebuild the shipped weights up to float rounding: with ``--threads 2`` the largest
weight differs by 0.0024 and ``cotimage eval`` scores the same (not the same bytes: the
arithmetic depends on the torch build and thread count).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from cotimage import suites
from cotimage.cli import check_output_file, parse_count, parse_path, parse_seed
from cotimage.generators.base import PromptBatch, SamplingConfig
from cotimage.generators.shapes import ASSET, PAD, ShapesPolicy, WordTokenizer
from cotimage.shapes import render
from cotimage.shapes.vq import PatchVQ


def dataset(renders_per_prompt: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompt ids, masks and image tokens for every (train prompt, render) pair."""
    records = suites.load("shapes/compbench-train")
    rng = np.random.default_rng(seed)
    texts = [r.text for r in records for _ in range(renders_per_prompt)]
    images = np.stack([render(r.spec, rng) for r in records for _ in range(renders_per_prompt)])
    prompts = WordTokenizer()(texts)
    return prompts.ids, prompts.mask, torch.from_numpy(PatchVQ.load().encode(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=parse_count, default=1200, help="optimizer steps (default 1200, the shipped weights')")
    parser.add_argument("--batch-size", type=parse_count, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--renders-per-prompt", type=parse_count, default=4)
    parser.add_argument("--prompt-dropout", type=float, default=0.1)
    parser.add_argument("--log-every", type=parse_count, default=100)
    parser.add_argument("--seed", type=parse_seed, default=0)
    parser.add_argument("--threads", type=parse_count, default=1,
                        help="torch threads (default 1); the weights depend on it, bit for bit")
    parser.add_argument("--out", type=parse_path, default=ASSET)
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args()
    try:
        check_output_file(args.out, args.force)
    except ValueError as error:
        parser.error(f"--out: {error}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr {args.lr} must be a finite number > 0")
    if not 0 <= args.prompt_dropout < 1:
        parser.error(f"--prompt-dropout {args.prompt_dropout} must lie in [0, 1)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ids, masks, tokens = dataset(args.renders_per_prompt, args.seed)
    policy = ShapesPolicy()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)),
    )
    plain = SamplingConfig()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        rows = torch.randint(len(ids), (args.batch_size,))
        batch_ids, batch_mask = ids[rows].clone(), masks[rows].clone()
        dropped = torch.rand(args.batch_size) < args.prompt_dropout
        batch_ids[dropped, 1:], batch_mask[dropped, 1:] = PAD, False  # BOS (column 0) stays, as WordTokenizer set it
        prompts = PromptBatch(batch_ids, batch_mask, ("",) * args.batch_size)
        loss = -policy.score_tokens(prompts, tokens[rows], plain).log_probs.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % args.log_every == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            print(f"step {step}/{args.steps} loss {loss.item():.4f} lr {schedule.get_last_lr()[0]:.2e} {elapsed:.0f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    policy.save(args.out, overwrite=args.force)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
