"""Train the shapes world's VQ tokenizer and write cotimage/assets/shapes_vq.safetensors.

    python scripts/train_vq.py [--images 4000] [--codebook-size 256] [--out PATH]

Renders scenes from every shipped suite (a tokenizer sees images, not prompts, so it may
see every colour-shape composition), runs k-means on their 4 x 4 patches, and reports the
reconstruction pixel error and the checker's pass rate on fresh renders.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cotimage import suites
from cotimage.cli import check_output_file, parse_count, parse_path, parse_seed
from cotimage.shapes import check, render
from cotimage.shapes.vq import ASSET, PatchVQ, kmeans


def rendered(n: int, seed: int) -> tuple[np.ndarray, list]:
    records = [r for name in suites.NAMES for r in suites.load(name)]
    rng = np.random.default_rng(seed)
    picks = [records[i] for i in rng.integers(len(records), size=n)]
    return np.stack([render(r.spec, rng) for r in picks]), picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=parse_count, default=4000, help="scenes to learn the codebook from")
    parser.add_argument("--codebook-size", type=parse_count, default=256)
    parser.add_argument("--iterations", type=parse_count, default=30, help="Lloyd iterations")
    parser.add_argument("--seed", type=parse_seed, default=0)
    parser.add_argument("--out", type=parse_path, default=ASSET)
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args()
    try:
        check_output_file(args.out, args.force)
    except ValueError as error:
        parser.error(f"--out: {error}")

    images, _ = rendered(args.images, args.seed)
    empty = PatchVQ(torch.zeros(1, 48))
    points = empty.patches(torch.from_numpy(images)).reshape(-1, 48)
    generator = torch.Generator().manual_seed(args.seed)
    unique = torch.unique(points, dim=0)  # renders repeat patches: cluster distinct ones, weighted alike
    codebook = kmeans(unique, min(args.codebook_size, len(unique)), args.iterations, generator)
    if len(codebook) < args.codebook_size:  # fewer distinct patches than codes: repeat to the asked size
        codebook = torch.cat(
            [
                codebook,
                codebook[torch.randint(len(codebook), (args.codebook_size - len(codebook),), generator=generator)],
            ]
        )
    vq = PatchVQ(codebook)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    vq.save(args.out, overwrite=args.force)

    vq = PatchVQ.load(args.out)
    test, records = rendered(1000, args.seed + 1)
    recon = vq.decode(vq.encode(test))
    error = np.abs(recon.astype(int) - test).mean()
    passed = np.mean([check(im, r.spec).passed for im, r in zip(recon, records)])
    print(f"distinct patches {len(unique)}, codebook {vq.codebook_size}, wrote {args.out}")
    print(f"1000 fresh renders: mean |pixel error| {error:.3f}, checker passes {passed:.3%} of reconstructions")


if __name__ == "__main__":
    main()
