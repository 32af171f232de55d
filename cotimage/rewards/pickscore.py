"""PickScore (Kirstain et al., 2023): a CLIP-H fine-tuned on Pick-a-Pic preferences, via transformers.

The score is ``logit_scale.exp() * cos(image, prompt)``, as the PickScore reference code
computes it (about 20 for a good match), in ``[-s, s]`` with ``s = logit_scale.exp()``.
Weights and processor are read from local directories only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import CLIPModel, CLIPProcessor

from cotimage.rewards.base import RewardModel

PICKSCORE_HELP = (
    "Save the model and its processor on a machine with network access, e.g. "
    "CLIPModel.from_pretrained('yuvalkirstain/PickScore_v1').save_pretrained(dir) and "
    "CLIPProcessor.from_pretrained('laion/CLIP-ViT-H-14-laion2B-s32B-b79K').save_pretrained(dir), "
    "then pass rewards.make('pickscore', path=dir)."
)


class PickScoreReward(RewardModel):
    """PickScore from a local transformers ``CLIPModel`` directory.

    Args:
        path: Directory with the model (``config.json`` and weights), as ``save_pretrained`` writes it.
        processor_path: Directory with the ``CLIPProcessor`` (default: ``path``).
        batch_size: Images scored per forward pass.

    Raises:
        FileNotFoundError: if a directory is missing; the message says how to provide it.
        ValueError: if a directory holds no CLIPModel's weights (another model's, or none) or no
            CLIPProcessor.
    """

    name = "pickscore"

    def __init__(
        self, path: str | Path | None = None, processor_path: str | Path | None = None, batch_size: int = 64
    ) -> None:
        self.batch_size = self.check_batch_size(batch_size)
        model_dir = self._require_dir(path, "path")
        processor_dir = self._require_dir(processor_path or path, "processor_path")
        try:
            model, loading = CLIPModel.from_pretrained(model_dir, local_files_only=True, output_loading_info=True)
            self.processor = CLIPProcessor.from_pretrained(processor_dir, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as error:  # no files; tensors of other shapes
            raise ValueError(f"reward {self.name!r}: cannot load a CLIPModel and CLIPProcessor from {model_dir} "
                             f"and {processor_dir}: {error}. {PICKSCORE_HELP}") from error
        # transformers only warns when the directory holds another model: every CLIP tensor is then random
        missing = [*loading["missing_keys"], *(key for key, *_ in loading["mismatched_keys"])]
        if missing:
            raise ValueError(f"reward {self.name!r}: path={str(model_dir)!r} holds no CLIPModel's weights "
                             f"({len(missing)} tensors missing, e.g. {missing[0]!r}). {PICKSCORE_HELP}")
        self.model = model.eval().requires_grad_(False)
        scale = float(self.model.logit_scale.exp())
        self.range = (-scale, scale)

    def _require_dir(self, path: str | Path | None, argument: str) -> Path:
        if path is None:
            raise FileNotFoundError(f"reward {self.name!r} needs {argument}=, a local directory. {PICKSCORE_HELP}")
        if not Path(path).is_dir():
            raise FileNotFoundError(f"reward {self.name!r}: {argument}={str(path)!r} is not a directory. {PICKSCORE_HELP}")
        return Path(path)

    @torch.no_grad()
    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        texts = self.texts(prompts)
        scale = self.model.logit_scale.exp().float().cpu()
        weight = next(self.model.parameters())
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = slice(start, start + self.batch_size)
            inputs = self.processor(  # channels_last: left to guess, an image 1 or 3 pixels high reads as channels-first
                text=texts[batch], images=list(images[batch]), return_tensors="pt", padding=True, truncation=True,
                max_length=self.model.config.text_config.max_position_embeddings, input_data_format="channels_last",
            )
            inputs = {key: value.to(weight.device) for key, value in inputs.items()}
            inputs["pixel_values"] = inputs["pixel_values"].to(weight.dtype)
            embeds = self.model(**inputs)  # image_embeds and text_embeds come normalised
            out.append(scale * (embeds.image_embeds * embeds.text_embeds).sum(-1).float().cpu())
        return torch.cat(out).clamp(-scale, scale).numpy()
