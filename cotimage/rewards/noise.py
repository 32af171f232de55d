"""A control reward: a pseudo-random score per image that knows nothing of the prompt or quality."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from cotimage.checks import is_int
from cotimage.rewards.base import RewardModel


class NoiseReward(RewardModel):
    """Uniform in [0, 1] from a keyed hash of each image's pixels: the same image always scores the same.

    A null control for reward studies. Added to a reward with a small weight
    (``"scene+0.1*noise"``) it breaks that reward's ties at random, so an experiment can tell
    what a second reward's information buys from what breaking ties alone does.

    Args:
        seed: Key of the hash; another seed gives other scores.
    """

    name, range = "noise", (0.0, 1.0)

    def __init__(self, seed: int = 0) -> None:
        if not is_int(seed) or not 0 <= seed < 2**64:
            raise ValueError(f"reward 'noise': seed={seed!r} must be an int in [0, 2**64)")
        self.key = int(seed).to_bytes(8, "little")

    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        digests = (hashlib.blake2b(image.tobytes(), digest_size=8, key=self.key).digest() for image in images)
        return np.array([int.from_bytes(d, "little") / 2**64 for d in digests], dtype=np.float32)
