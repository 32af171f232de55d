"""The shapes world's VQ image tokenizer: 32 x 32 px images <-> 8 x 8 grids of codebook indices.

Each 4 x 4 px patch is one token, the index of its nearest codebook vector (squared
distance over the patch's 48 RGB values), as in iGPT's colour-cluster tokenizer; the
codebook is learned by k-means on patches of rendered scenes (``scripts/train_vq.py``).
Decoding pastes each token's codebook patch back, so a wrong token shows as a wrong patch,
the way a wrong token shows in a Janus-Pro image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from cotimage.checks import require_count, writable_file

ASSET = Path(__file__).resolve().parents[1] / "assets" / "shapes_vq.safetensors"
Array = TypeVar("Array", np.ndarray, torch.Tensor)


class PatchVQ(nn.Module):
    """Patch tokenizer with a learned codebook.

    Args:
        codebook: Float tensor (K, patch * patch * 3) of patch vectors in [0, 255].
        patch: Patch side in pixels.
        image_size: Image side in pixels; ``(image_size // patch) ** 2`` tokens per image.
    """

    def __init__(self, codebook: torch.Tensor, patch: int = 4, image_size: int = 32) -> None:
        super().__init__()
        patch, image_size = require_count("patch", patch), require_count("image_size", image_size)
        if codebook.ndim != 2 or codebook.shape[1] != patch * patch * 3:
            raise ValueError(f"codebook must have shape (K, {patch * patch * 3}), got {tuple(codebook.shape)}")
        if image_size % patch:
            raise ValueError(f"image_size={image_size} must be a multiple of patch={patch}")
        self.register_buffer("codebook", codebook.float())
        self.patch, self.image_size = patch, image_size
        self.grid = image_size // patch

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) images -> (B, tokens, patch * patch * 3) float patches, row-major."""
        b, g, p = images.shape[0], self.grid, self.patch
        x = images.reshape(b, g, p, g, p, 3).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b, g * g, p * p * 3).float()

    @torch.no_grad()
    def encode(self, images: Array) -> Array:
        """uint8 images (B, H, W, 3) -> int64 tokens (B, grid * grid), row-major.

        Returns a numpy array for numpy input and a tensor for tensor input.
        """
        x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)  # mirrored views too
        shape = (self.image_size, self.image_size, 3)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape or x.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 of shape (B, {', '.join(map(str, shape))}), got {x.dtype} {tuple(x.shape)}"
            )
        patches = self.patches(x.to(self.codebook.device))
        tokens = torch.cdist(patches, self.codebook.expand(len(patches), -1, -1)).argmin(-1)
        return tokens.cpu().numpy() if isinstance(images, np.ndarray) else tokens

    @torch.no_grad()
    def decode(self, tokens: Array) -> Array:
        """Tokens (B, grid * grid) in ``[0, codebook_size)``, of any integer dtype -> uint8 images (B, H, W, 3).

        Returns a numpy array for numpy input and a tensor for tensor input.
        """
        t = torch.as_tensor(np.ascontiguousarray(tokens) if isinstance(tokens, np.ndarray) else tokens)
        integer = not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)
        if t.ndim != 2 or t.shape[1] != self.num_tokens or not integer:
            raise ValueError(f"tokens must be integers of shape (B, {self.num_tokens}), got {t.dtype} {tuple(t.shape)}")
        if t.numel():  # the range in Python ints: a huge unsigned token would wrap in int64
            values = t.cpu().numpy() if t.dtype.is_signed or t.dtype == torch.uint8 else np.asarray(tokens)
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= self.codebook_size:
                raise ValueError(f"tokens must lie in [0, {self.codebook_size}), got [{low}, {high}]")
        t = t.long()
        b, g, p = t.shape[0], self.grid, self.patch
        x = self.codebook[t.to(self.codebook.device)].round().clamp(0, 255).to(torch.uint8)
        x = x.reshape(b, g, g, p, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(b, self.image_size, self.image_size, 3)
        return x.cpu().numpy() if isinstance(tokens, np.ndarray) else x

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the codebook as fp16 safetensors (patch values are integers below 2048: exact).

        Raises:
            ValueError: if a file is at ``path`` and ``overwrite`` is false, or ``path`` cannot be written.
        """
        path = writable_file(path, overwrite)
        meta = {"patch": str(self.patch), "image_size": str(self.image_size)}
        save_file({"codebook": self.codebook.half().contiguous()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path = ASSET) -> PatchVQ:
        """Load a tokenizer; by default the shipped one."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer weights at {path}; run scripts/train_vq.py to make them")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        return cls(tensors["codebook"], int(meta.get("patch", 4)), int(meta.get("image_size", 32)))


def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; empty clusters restart at the worst-fit point."""
    centers = points[torch.randint(len(points), (1,), generator=generator)]
    for _ in range(k - 1):
        d = torch.cdist(points, centers).min(1).values ** 2
        probs = d / d.sum() if d.sum() > 0 else torch.full_like(d, 1 / len(d))
        centers = torch.cat([centers, points[torch.multinomial(probs, 1, generator=generator)]])
    for _ in range(iterations):
        dist = torch.cdist(points, centers)
        assign = dist.argmin(1)
        sums = torch.zeros_like(centers).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k)
        centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            worst = dist.min(1).values.topk(len(empty)).indices
            centers[empty] = points[worst]
    return centers
