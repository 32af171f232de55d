"""Learned rewards for the shapes world: a preference model (``pref``) and an outcome reward model (``orm``).

Both are one network, :class:`ScorerNet`, which reads the prompt against the image: a
transformer over the prompt's words (and a CLS token) whose layers also cross-attend to
patch features from a small conv encoder; the CLS output is one logit. Attending from words
to patches lets "red" and "circle" pick out the patches of one object, which two separately
pooled CLIP embeddings cannot do, and since prompts are short the network costs little
more than its conv encoder. With ``counting=True`` a :class:`SumAttention` block follows
each decoder layer: it sums over patches instead of averaging, so a word can count them.

- ``pref`` (the HPS / ImageReward analogue): trained with a Bradley-Terry loss on pairs of
  base-generator images for one prompt, the checker labelling which is better; the score is
  the logit, unbounded, and only differences between images of one prompt mean anything.
- ``orm``: a classifier of "the image matches the prompt" (all checker criteria hold);
  the score is the probability, in [0, 1].

Weights are trained by ``scripts/train_rewards.py`` and shipped in fp16 with their config,
kind and training recipe in the safetensors metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from cotimage.generators.shapes import SPECIALS, WordTokenizer
from cotimage.rewards.base import RewardModel
from cotimage.shapes.grammar import VOCABULARY

ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: What a learned reward's logit means: a Bradley-Terry score or a match classifier's logit.
KINDS: tuple[str, ...] = ("pref", "orm")


@dataclass(frozen=True)
class ScorerConfig:
    """Architecture of :class:`ScorerNet` (stored with its weights)."""

    text_vocab: int = len(SPECIALS) + len(VOCABULARY)
    prompt_tokens: int = 41
    image_size: int = 32
    patch: int = 4
    d_model: int = 96
    conv_layers: int = 3
    layers: int = 3
    heads: int = 4
    ff: int = 384
    #: Add a :class:`SumAttention` block after each decoder layer (False in the first shipped weights).
    counting: bool = False


class SumAttention(nn.Module):
    """Cross-attention that sums instead of averages: each head adds up ``sigmoid(q . k) * v`` over patches.

    Softmax attention returns a weighted mean, so "two red circles" and "three red circles"
    look alike to it; an unnormalized sum over patches grows with how many patches match the
    query, and the conv encoder can fire one patch per object, so the sum is a count.
    """

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)
        self.key_value = nn.Linear(d, 2 * d)
        # Gates start mostly shut and the block adds nothing: a sum over 64 patches at init
        # would swamp the residual stream and slow training.
        self.gate_bias = nn.Parameter(torch.full((heads, 1, 1), -2.0))
        self.out = nn.Linear(d, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, text: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """Text tokens (B, T, d) and patch features (B, P, d) -> the residual update (B, T, d)."""
        b, t, d = text.shape
        q = self.query(self.norm(text)).view(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.key_value(patches).view(b, patches.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        weights = torch.sigmoid(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + self.gate_bias)  # (B, heads, T, P)
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, d))


class ScorerNet(nn.Module):
    """uint8 images and encoded prompts -> one logit per (image, prompt) pair."""

    def __init__(self, cfg: ScorerConfig = ScorerConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d, grid = cfg.d_model, cfg.image_size // cfg.patch
        # A patch embedding, then 3x3 convs on the patch grid: an object spans 2-3 patches.
        self.patch_embed = nn.Conv2d(3, d, cfg.patch, stride=cfg.patch)
        self.convs = nn.ModuleList(nn.Conv2d(d, d, 3, padding=1) for _ in range(cfg.conv_layers))
        self.image_pos = nn.Parameter(torch.randn(grid * grid, d) * 0.02)
        self.image_norm = nn.LayerNorm(d)
        # A learned "nothing here" token among the patches: attention weight left on it tells
        # how much of the image matched a query, so counts survive attention's averaging.
        self.null = nn.Parameter(torch.randn(1, d) * 0.02)
        self.text_embed = nn.Embedding(cfg.text_vocab, d)
        self.cls = nn.Parameter(torch.zeros(d))
        self.text_pos = nn.Parameter(torch.randn(1 + cfg.prompt_tokens, d) * 0.02)
        layer = nn.TransformerDecoderLayer(
            d, cfg.heads, cfg.ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.counters = nn.ModuleList(SumAttention(d, cfg.heads) for _ in range(cfg.layers if cfg.counting else 0))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, H, W, 3) -> the null token and patch features (B, 1 + patches, d)."""
        x = self.patch_embed(images.permute(0, 3, 1, 2).to(self.image_pos.dtype) / 127.5 - 1)
        for conv in self.convs:
            x = x + conv(F.gelu(x))
        x = self.image_norm(x.flatten(2).transpose(1, 2) + self.image_pos)
        return torch.cat([self.null.expand(len(x), 1, -1), x], 1)

    def forward(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, H, W, 3), prompt ids and mask (B, P) -> logits (B,)."""
        width = int(mask.sum(1).max())  # prompts are left-aligned: drop the all-padding tail
        ids, mask = ids[:, :width], mask[:, :width]
        text = torch.cat([self.cls.expand(len(ids), 1, -1), self.text_embed(ids)], 1) + self.text_pos[: width + 1]
        keep = torch.cat([mask.new_ones(len(ids), 1), mask], 1)
        patches = self.image_tokens(images)
        x = text
        for i, layer in enumerate(self.decoder.layers):
            x = layer(x, patches, tgt_key_padding_mask=~keep)
            if self.counters:
                x = x + self.counters[i](x, patches[:, 1:])  # the null token is no object to count
        return self.head(self.norm(x[:, 0])).squeeze(-1)


class LearnedReward(RewardModel):
    """A :class:`ScorerNet` behind the reward contract, in eval mode, without gradients.

    Args:
        net: The trained network.
        kind: ``"pref"`` (score = logit, unbounded) or ``"orm"`` (score = sigmoid(logit), [0, 1]).
        name: Registry name.
        batch_size: Images scored per forward pass.
    """

    def __init__(self, net: ScorerNet, kind: str, name: str, batch_size: int = 512) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not allowed; choose one of {list(KINDS)}")
        self.net = net.eval().requires_grad_(False)
        self.kind, self.name = kind, name
        self.batch_size = self.check_batch_size(batch_size)
        self.range = (0.0, 1.0) if kind == "orm" else (-np.inf, np.inf)
        self.tokenizer = WordTokenizer(net.cfg.prompt_tokens - 1)

    def encode(self, prompts: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt ids and mask; a prompt over the word limit raises naming this reward."""
        try:
            encoded = self.tokenizer(self.texts(prompts))
        except ValueError as error:
            raise ValueError(f"reward {self.name!r}: {error}") from error
        return encoded.ids, encoded.mask

    @torch.no_grad()
    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        side = self.net.cfg.image_size
        if images.shape[1:3] != (side, side):
            raise ValueError(f"reward {self.name!r}: images must be {side} x {side}, got {images.shape[1:3]}")
        device = self.net.image_pos.device
        ids, mask = (t.to(device) for t in self.encode(prompts))
        pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        logits = torch.cat(
            [
                self.net(pixels[i : i + self.batch_size], ids[i : i + self.batch_size], mask[i : i + self.batch_size])
                for i in range(0, len(images), self.batch_size)
            ]
        )
        return (torch.sigmoid(logits) if self.kind == "orm" else logits).float().cpu().numpy()

    @classmethod
    def load(cls, path: str | Path, name: str, batch_size: int = 512) -> LearnedReward:
        """Load weights written by :func:`save_net` (in float32)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"reward {name!r}: no weights at {path}; run scripts/train_rewards.py {name}")
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
            net = ScorerNet(ScorerConfig(**json.loads(metadata["config"])))
            net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
            kind = json.loads(metadata["kind"])
        except (KeyError, TypeError, RuntimeError, ValueError, SafetensorError) as error:
            raise ValueError(
                f"reward {name!r}: {path} is not a learned reward's weights file (as scripts/train_rewards.py "
                f"writes for pref, pref-narrow or orm): {type(error).__name__}: {error}"
            ) from error
        return cls(net, kind, name, batch_size)


def save_net(net: ScorerNet, path: str | Path, **metadata: Any) -> None:
    """Write a :class:`ScorerNet` in fp16, its config and JSON-encoded ``metadata`` to one file."""
    tensors = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    info = {"config": json.dumps(asdict(net.cfg)), **{k: json.dumps(v) for k, v in metadata.items()}}
    save_file(tensors, str(path), metadata=info)


def shipped_weights(name: str) -> Path:
    """Where a shipped reward's weights live: ``cotimage/assets/reward_<name>.safetensors`` (``-`` as ``_``)."""
    return ASSETS / f"reward_{name.replace('-', '_')}.safetensors"


def shipped(name: str, weights: str | Path | None = None, batch_size: int = 512) -> LearnedReward:
    """A shipped learned reward by registry name (``pref``, ``pref-narrow``, ``orm``), or other weights."""
    return LearnedReward.load(weights or shipped_weights(name), name, batch_size)
