"""Activation memory of a Janus-Pro-1B update, with and without gradient checkpointing, measured on the CPU.

    python -m benchmarks.janus_memory [--batch 16] [--layers 1 2 3]

An update's teacher-forced pass keeps activations for the backward pass, per image and per layer. This
builds random models at Janus-Pro-1B's widths (``JANUS_PRO_1B_SHAPES``: hidden 2048, 576 image tokens of
a 16,384-code VQ) with a few layers, scores one image's tokens with guidance (two rows, as an update with
Janus-Pro's guidance does) and counts the bytes autograd keeps (``saved_activation_bytes``), in bf16. A
straight line through the layer counts splits them into a per-layer part and the rest (embeddings, the
generation head, log-probabilities over the codebook), which give the estimate for all 24 layers and
``--batch`` images. No GPU is needed; the attention kernels of a GPU may keep somewhat less.

Appends a line to benchmarks/results/janus_memory.jsonl.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common import append_result, saved_activation_bytes
from cotimage.cli import parse_count
from cotimage.generators.base import SamplingConfig
from cotimage.generators.janus import DEFAULT_CFG_WEIGHT, JANUS_PRO_1B_SHAPES, JanusGenerator, build_random

MIB = 2**20


def saved_mib(layers: int, checkpointing: bool) -> float:
    """MiB kept for the backward pass of one guided image at Janus-Pro-1B's widths and ``layers`` layers."""
    model, processor = build_random(seed=0, **{**JANUS_PRO_1B_SHAPES, "layers": layers})
    gen = JanusGenerator(model=model.to(torch.bfloat16), processor=processor, gradient_checkpointing=checkpointing)
    policy = gen.policy.train()
    prompts = gen.encode_prompts(["two red circles left of a blue square"])
    tokens = torch.randint(0, gen.codebook_size, (1, gen.num_image_tokens), generator=torch.Generator().manual_seed(0))
    guided = SamplingConfig(cfg_weight=DEFAULT_CFG_WEIGHT)
    _, nbytes = saved_activation_bytes(policy, lambda: policy.score_tokens(prompts, tokens, guided))
    return nbytes / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=parse_count, default=16, help="images per update in the estimate")
    parser.add_argument("--layers", type=parse_count, nargs="+", default=[1, 2, 3], help="layer counts to measure (two or more)")
    args = parser.parse_args()
    if len(set(args.layers)) < 2:
        parser.error(f"--layers needs two or more different counts to fit a line, got {args.layers}")
    full_layers = JANUS_PRO_1B_SHAPES["layers"]
    figures: dict = {"shapes": "janus-pro-1b widths", "dtype": "bfloat16", "cfg_weight": DEFAULT_CFG_WEIGHT}
    for checkpointing in (False, True):
        label = "checkpointing" if checkpointing else "plain"
        measured = [saved_mib(n, checkpointing) for n in args.layers]
        per_layer, rest = np.polyfit(args.layers, measured, 1)
        per_image = rest + full_layers * per_layer
        figures[label] = {
            "measured_mib": dict(zip(map(str, args.layers), measured)),
            "per_layer_mib_per_image": per_layer,
            "outside_layers_mib_per_image": rest,
            f"{full_layers}_layers_mib_per_image": per_image,
            f"{full_layers}_layers_gib_at_batch_{args.batch}": per_image * args.batch / 1024,
        }
        print(f"{label:14s} per layer {per_layer:7.1f} MiB/image, outside layers {rest:6.1f} MiB/image, "
              f"{full_layers} layers x {args.batch} images: {per_image * args.batch / 1024:5.1f} GiB", flush=True)
    print(f"appended to {append_result('janus_memory', figures)}")


if __name__ == "__main__":
    main()
