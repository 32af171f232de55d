"""The reward-model contract: ``rm(images, prompts) -> float32 scores``, one per image."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from cotimage.checks import is_int

#: Relative tolerance of the range check: a few float32 roundings (float32's epsilon is 1.2e-7).
_FLOAT32_SLACK = 1e-6


class RewardModel(ABC):
    """Scores images against prompts.

    Subclasses implement :meth:`score`; calling the model checks inputs and outputs, so
    every reward fails the same clear way on bad input.

    Attributes:
        name: Registry name, used in logs and error messages.
        range: ``(low, high)`` bounds of the score (documented, and checked on output).
        needs_scenes: Whether every prompt must be a shapes scene (a suite record, or a text
            the shapes grammar parses), as for the checker; the environment checks its
            prompts against it when an episode starts, not when the image is scored.
    """

    name: str = "reward"
    range: tuple[float, float] = (-np.inf, np.inf)
    needs_scenes: bool = False

    @abstractmethod
    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        """uint8 images (B, H, W, 3) and B prompts (strings or suite records) -> (B,) scores."""

    def details(self, images: np.ndarray, prompts: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        """Scores and per-image details ({} unless the reward explains itself, as ``scene`` does)."""
        return self.score(images, prompts), [{} for _ in range(len(images))]

    def __call__(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        return self.score_with_details(images, prompts)[0]

    def score_with_details(self, images: np.ndarray, prompts: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        """Checked scores (float32, finite, one per image) and per-image details."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape[1:3]:
            raise ValueError(
                f"reward {self.name!r}: images must be uint8 (B, H, W, 3) with H, W >= 1, got {images.dtype} {images.shape}"
            )
        if isinstance(prompts, str):
            got = "a string"
        elif not hasattr(prompts, "__len__"):
            got = type(prompts).__name__
        else:
            got = f"{len(prompts)} prompts" if len(prompts) != len(images) else None
        if got is not None:
            raise ValueError(f"reward {self.name!r}: expected {len(images)} prompts (one per image), got {got}")
        if len(images) == 0:
            return np.zeros(0, np.float32), []
        scores, details = self.details(images, prompts)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(images),):
            raise ValueError(f"reward {self.name!r} returned shape {scores.shape}, expected ({len(images)},)")
        if not np.isfinite(scores).all():
            raise ValueError(f"reward {self.name!r} returned non-finite scores: {scores}")
        low, high = self.range
        # Scores are float32 (an ensemble's sum rounds in float32): allow its rounding at the bounds.
        slack = _FLOAT32_SLACK * max([1.0, *(abs(bound) for bound in self.range if np.isfinite(bound))])
        if scores.min() < low - slack or scores.max() > high + slack:
            raise ValueError(
                f"reward {self.name!r} returned scores in [{scores.min()}, {scores.max()}], outside its range {self.range}"
            )
        return scores, details

    def texts(self, prompts: Sequence[Any]) -> list[str]:
        """The text of each prompt (a string, or a suite record's ``.text``), for text encoders.

        Raises:
            ValueError: naming the reward, for a prompt that is neither.
        """
        out = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else getattr(prompt, "text", None)
            if not isinstance(text, str):
                raise ValueError(
                    f"reward {self.name!r}: prompts must be strings or suite records with .text, "
                    f"got {type(prompt).__name__}"
                )
            out.append(text)
        return out

    def check_batch_size(self, batch_size: Any) -> int:
        """``batch_size`` if it is a positive int, else a ``ValueError`` naming the reward."""
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"reward {self.name!r}: batch_size={batch_size!r} must be a positive int")
        return batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, range={self.range})"
