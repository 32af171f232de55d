"""CLIP-similarity rewards built with open_clip: the shapes world's own small CLIP, CLIPScore and HPS v2.

All three are one :class:`OpenCLIPReward`: embed the image and the prompt, and score their
cosine similarity. They differ only in the model and in how the cosine is reported:

- ``clip``: the shapes CLIP (a tiny ViT and text transformer, an open_clip custom config
  shipped in ``cotimage/assets/open_clip/``), trained by ``scripts/train_rewards.py``.
  Scored as CLIPScore: ``2.5 * max(cos, 0)`` (Hessel et al., 2021), in [0, 2.5].
- ``clipscore``: CLIPScore with any open_clip architecture and a local checkpoint file.
- ``hpsv2``: HPS v2 / v2.1, which is open_clip ViT-H-14 fine-tuned on human preferences;
  its score is the plain cosine, in [-1, 1], as the HPS v2 package reports it.

Nothing is downloaded: real checkpoints are read from local files, and a missing file raises
``FileNotFoundError`` saying where to get it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cotimage.rewards.base import RewardModel
from cotimage.rewards.learned import ASSETS, shipped_weights

SHAPES_CLIP_CONFIG_DIR = ASSETS / "open_clip"
SHAPES_CLIP_MODEL = "cotimage-shapes-clip"
SHAPES_CLIP_WEIGHTS = shipped_weights("clip")
#: CLIPScore's rescaling weight w in ``w * max(cos, 0)`` (Hessel et al., 2021).
CLIPSCORE_WEIGHT = 2.5
#: Compact ids of the shapes CLIP's text vocabulary that are not BPE tokens.
COMPACT_PAD, COMPACT_UNK = 0, 1

HPS_HELP = (
    "Download HPS_v2.1_compressed.pt (or HPS_v2_compressed.pt) from https://huggingface.co/xswu/HPSv2 on a "
    "machine with network access, then pass rewards.make('hpsv2', checkpoint='/path/to/HPS_v2.1_compressed.pt')."
)
CLIPSCORE_HELP = (
    "Save an open_clip checkpoint for that architecture (e.g. open_clip_pytorch_model.bin from "
    "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K for model='ViT-B-32') on a machine with "
    "network access, then pass rewards.make('clipscore', model='ViT-B-32', checkpoint='/path/to/file')."
)


def preprocess(images: np.ndarray, cfg: dict) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, h, w) at a model's input size.

    open_clip's validation transform, batched in torch: resize the shorter side (bicubic,
    antialiased), centre-crop, normalise with the model's ``preprocess_cfg`` mean and std.
    """
    asked = {key: cfg.get(key, default) for key, default in (("resize_mode", "shortest"), ("interpolation", "bicubic"))}
    if asked != {"resize_mode": "shortest", "interpolation": "bicubic"}:  # what some pretrained tags set
        raise ValueError(f"preprocess does open_clip's default transform (resize_mode='shortest', interpolation="
                         f"'bicubic'); this model's preprocess_cfg asks for {asked}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    height, width = cfg["size"] if isinstance(cfg["size"], (tuple, list)) else (cfg["size"],) * 2
    if x.shape[-2:] != (height, width):
        h, w = x.shape[-2:]
        # torchvision's roundings, so non-square images match open_clip's transform: the side
        # that sets the scale is exact and the other truncated (Resize), the crop centred with
        # round (CenterCrop).
        size = (height, max(width, int(height * w / h))) if height / h >= width / w else (max(height, int(width * h / w)), width)
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        top, left = int(round((size[0] - height) / 2)), int(round((size[1] - width) / 2))
        x = x[:, :, top : top + height, left : left + width]
    mean, std = (torch.tensor(cfg[key]).view(1, 3, 1, 1) for key in ("mean", "std"))
    return (x - mean) / std


class OpenCLIPReward(RewardModel):
    """``weight * cos(image, prompt)`` from an open_clip model, optionally clamped at 0.

    Images are prepared by :func:`preprocess` (open_clip's validation transform, batched).

    Args:
        model: An open_clip CLIP model; put in eval mode here.
        tokenizer: Texts -> (B, context_length) int64 token ids.
        name: Registry name.
        weight: Scale of the cosine.
        clamp: Report ``max(cos, 0)`` as CLIPScore does (range [0, weight]); else the
            cosine itself (range [-weight, weight]).
        batch_size: Images embedded per forward pass.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        name: str,
        weight: float = CLIPSCORE_WEIGHT,
        clamp: bool = True,
        batch_size: int = 256,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.weight, self.clamp = weight, clamp
        self.batch_size = self.check_batch_size(batch_size)
        self.range = (0.0 if clamp else -weight, weight)
        self.preprocess_cfg = model.visual.preprocess_cfg

    @torch.no_grad()
    def cosine(self, images: np.ndarray, texts: list[str]) -> torch.Tensor:
        """(B,) cosine similarity of each image with its text."""
        weight = next(self.model.parameters())
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = slice(start, start + self.batch_size)
            pixels = preprocess(images[batch], self.preprocess_cfg).to(weight.device, weight.dtype)
            image = self.model.encode_image(pixels, normalize=True)
            text = self.model.encode_text(self.tokenizer(texts[batch]).to(weight.device), normalize=True)
            out.append((image * text).sum(-1).float().cpu())
        return torch.cat(out).clamp(-1, 1)  # rounding can push a unit-vector dot product past 1

    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        cos = self.cosine(images, self.texts(prompts))
        return (self.weight * (cos.clamp(min=0) if self.clamp else cos)).numpy()


def require_file(path: str | Path | None, reward: str, help_text: str) -> Path:
    """``path`` as a Path if it is a file; else ``FileNotFoundError`` naming the reward and how to get it."""
    if path is None:
        raise FileNotFoundError(f"reward {reward!r} needs a local checkpoint and none was given. {help_text}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"reward {reward!r}: no checkpoint file at {path}. {help_text}")
    return Path(path)


def load_open_clip(model: str, checkpoint: str | Path, reward: str) -> tuple[torch.nn.Module, Callable]:
    """An open_clip architecture with weights from a local file, and its tokenizer.

    Raises:
        ValueError: if ``model`` is not an open_clip architecture (built-in or added with
            ``open_clip.add_model_config``).
    """
    if model not in open_clip.list_models():
        raise ValueError(
            f"reward {reward!r}: model={model!r} is not an open_clip architecture; see open_clip.list_models() "
            "or register a config with open_clip.add_model_config(path)"
        )
    # An absolute path can never be mistaken for one of open_clip's download tags.
    try:
        net = open_clip.create_model(model, pretrained=str(Path(checkpoint).resolve()))
    except Exception as error:  # torch.load's and load_state_dict's many errors, one message
        raise ValueError(
            f"reward {reward!r}: cannot load {checkpoint} as {model!r} weights: {type(error).__name__}: {error}"
        ) from error
    return net, open_clip.get_tokenizer(model)


def clipscore(model: str = "ViT-B-32", checkpoint: str | Path | None = None, batch_size: int = 64) -> OpenCLIPReward:
    """CLIPScore ``2.5 * max(cos, 0)`` with an open_clip architecture and a local checkpoint file."""
    path = require_file(checkpoint, "clipscore", CLIPSCORE_HELP)
    net, tokenizer = load_open_clip(model, path, "clipscore")
    return OpenCLIPReward(net, tokenizer, "clipscore", batch_size=batch_size)


def hpsv2(checkpoint: str | Path | None = None, model: str = "ViT-H-14", batch_size: int = 64) -> OpenCLIPReward:
    """HPS v2 / v2.1: the cosine of a ViT-H-14 fine-tuned on human preference pairs.

    Args:
        checkpoint: The HPS checkpoint file (a dict with ``state_dict``, as released).
        model: The architecture; HPS v2 is ViT-H-14 (another name is for tests and variants).
        batch_size: Images per forward pass.
    """
    path = require_file(checkpoint, "hpsv2", HPS_HELP)
    net, tokenizer = load_open_clip(model, path, "hpsv2")
    return OpenCLIPReward(net, tokenizer, "hpsv2", weight=1.0, clamp=False, batch_size=batch_size)


# -- the shapes CLIP ------------------------------------------------------------------------------
class CompactTokenizer:
    """open_clip's BPE tokenizer, then a map onto the few BPE tokens a small text tower keeps.

    The shapes grammar uses about 70 BPE tokens of CLIP's 49,408; an embedding table for all
    of them would be most of the model. Kept tokens get compact ids 2.. in BPE order, so the
    end-of-text token keeps the highest id and open_clip's argmax pooling still finds it;
    padding is 0 and any other token is 1 (unknown).

    Args:
        kept: The BPE ids to keep, including start- and end-of-text.
        context_length: Tokens per text.
    """

    def __init__(self, kept: Sequence[int], context_length: int) -> None:
        self.bpe = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
        self.kept = sorted(int(i) for i in kept)
        if self.kept[-1] != self.bpe.eot_token_id or self.bpe.sot_token_id not in self.kept:
            raise ValueError("kept must include the start- and end-of-text tokens")
        self.lookup = torch.full((self.bpe.vocab_size,), COMPACT_UNK, dtype=torch.long)
        self.lookup[self.kept] = torch.arange(2, len(self.kept) + 2)
        self.lookup[0] = COMPACT_PAD
        self.vocab_size = len(self.kept) + 2

    @classmethod
    def for_texts(cls, texts: Sequence[str], context_length: int) -> CompactTokenizer:
        """Keep exactly the BPE tokens that ``texts`` use."""
        ids = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)(list(texts))
        return cls(sorted(set(ids.flatten().tolist()) - {0}), context_length)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.lookup[self.bpe(texts)]


def shapes_clip_config() -> dict:
    """The shapes CLIP's open_clip config (registered with open_clip on first use)."""
    if SHAPES_CLIP_MODEL not in open_clip.list_models():
        open_clip.add_model_config(SHAPES_CLIP_CONFIG_DIR)
    return open_clip.get_model_config(SHAPES_CLIP_MODEL)


def build_shapes_clip(tokenizer: CompactTokenizer) -> torch.nn.Module:
    """A randomly initialised shapes CLIP whose text tower fits ``tokenizer``."""
    capacity = shapes_clip_config()["text_cfg"]["vocab_size"]
    if tokenizer.vocab_size > capacity:
        raise ValueError(f"the tokenizer keeps {tokenizer.vocab_size} tokens; the config holds {capacity}")
    return open_clip.create_model(SHAPES_CLIP_MODEL, pretrained=None)


def save_shapes_clip(model: torch.nn.Module, tokenizer: CompactTokenizer, path: str | Path, **metadata: Any) -> None:
    """Write fp16 weights with the kept BPE ids and ``metadata`` (e.g. the training recipe)."""
    tensors = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    info = {"kept_bpe_ids": json.dumps(tokenizer.kept), **{k: json.dumps(v) for k, v in metadata.items()}}
    save_file(tensors, str(path), metadata=info)


def shapes_clip(weights: str | Path | None = None, batch_size: int = 256) -> OpenCLIPReward:
    """The shipped shapes CLIP as a CLIPScore reward named ``clip``."""
    path = Path(weights or SHAPES_CLIP_WEIGHTS)
    if not path.is_file():
        raise FileNotFoundError(f"reward 'clip': no weights at {path}; run scripts/train_rewards.py clip")
    try:
        with safe_open(str(path), "pt") as f:
            kept = json.loads((f.metadata() or {})["kept_bpe_ids"])
    except (KeyError, SafetensorError) as error:
        raise ValueError(
            f"reward 'clip': {path} is not a shapes CLIP weights file (as scripts/train_rewards.py clip writes): "
            f"{type(error).__name__}: {error}"
        ) from error
    tokenizer = CompactTokenizer(kept, shapes_clip_config()["text_cfg"]["context_length"])
    model, _ = load_open_clip(SHAPES_CLIP_MODEL, path, "clip")
    return OpenCLIPReward(model, tokenizer, "clip", batch_size=batch_size)
