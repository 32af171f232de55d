"""Image-text reward models behind one contract, and a registry users can extend.

>>> from cotimage import rewards
>>> rm = rewards.make("scene")
>>> rm(images, prompts)            # float32 array, one score per image
>>> rewards.register("mine", lambda **kw: MyReward(**kw))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cotimage.rewards.base import RewardModel
from cotimage.rewards.scene import SceneReward

_REGISTRY: dict[str, Callable[..., RewardModel]] = {}


def register(name: str, factory: Callable[..., RewardModel], overwrite: bool = False) -> None:
    """Make ``make(name, **kw)`` build ``factory(**kw)``. Refuses to replace a name unless asked."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"reward {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Registered reward names."""
    return sorted(_REGISTRY)


class FunctionReward(RewardModel):
    """Wraps a plain callable ``f(images, prompts) -> scores`` in the checked contract."""

    def __init__(self, fn: Callable[[np.ndarray, Any], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def score(self, images, prompts):
        return self.fn(images, prompts)


def make(spec: str | RewardModel | Callable, **kwargs: Any) -> RewardModel:
    """Build a reward model from a registered name, a reward model or a plain callable.

    Raises:
        ValueError: for an unknown name; the message lists the registered ones.
    """
    if isinstance(spec, RewardModel):
        return spec
    if callable(spec):
        return FunctionReward(spec)
    if not isinstance(spec, str) or spec not in _REGISTRY:
        raise ValueError(f"reward={spec!r} is unknown; registered rewards: {names()} (or pass a callable)")
    return _REGISTRY[spec](**kwargs)


register("scene", SceneReward)
register("scene-strict", lambda: SceneReward(strict=True))

__all__ = ["FunctionReward", "RewardModel", "SceneReward", "make", "names", "register"]
