"""Rewards from the shapes world's exact scene checker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cotimage.checks import require_bool
from cotimage.rewards.base import RewardModel
from cotimage.shapes import as_spec, check


class SceneReward(RewardModel):
    """The checker's score: the fraction of criteria met, in [0, 1].

    Args:
        strict: Score 1 only when every criterion holds, else 0 (GenEval's per-image accuracy).
    """

    range = (0.0, 1.0)
    needs_scenes = True

    def __init__(self, strict: bool = False) -> None:
        self.strict = require_bool("reward 'scene': strict", strict)
        self.name = "scene-strict" if strict else "scene"

    def details(self, images: np.ndarray, prompts: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        verdicts = [check(image, self._spec(prompt)) for image, prompt in zip(images, prompts)]
        scores = np.array([float(v.passed) if self.strict else v.score for v in verdicts], np.float32)
        return scores, [v.details() for v in verdicts]

    def _spec(self, prompt: Any):
        try:
            return as_spec(prompt)
        except ValueError as error:
            raise ValueError(f"reward {self.name!r}: {error}") from error

    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        return self.details(images, prompts)[0]
