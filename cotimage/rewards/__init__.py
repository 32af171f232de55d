"""Image-text reward models behind one contract, and a registry users can extend.

>>> from cotimage import rewards
>>> rm = rewards.make("scene")
>>> rm(images, prompts)            # float32 array, one score per image
>>> rewards.make("scene+0.5*clip")  # a weighted sum of registered rewards
>>> rewards.register("mine", lambda **kw: MyReward(**kw))
>>> rewards.generalization("pref")  # ranking accuracy in-domain and out-of-domain
>>> rewards.matching("pref")  # a render of the prompt's scene over another scene's

Shipped for the shapes world (see :data:`SHIPPED`): ``scene`` and ``scene-strict`` (the
checker), ``clip`` (a small open_clip CLIP, CLIPScore), ``pref`` and ``pref-narrow`` (a
Bradley-Terry preference model trained on diverse / narrow prompts) and ``orm`` (an
outcome classifier). ``noise`` is a control: a pseudo-random score per image. Loaders for
real models read local files only: ``clipscore`` (``model=``, ``checkpoint=``), ``hpsv2``
(``checkpoint=``) and ``pickscore`` (``path=``).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from cotimage.checks import require_bool
from cotimage.files import file_digest
from cotimage.rewards import ensemble
from cotimage.rewards.base import RewardModel
from cotimage.rewards.ensemble import EnsembleReward
from cotimage.rewards.generalization import GeneralizationResult, MatchingResult, generalization, matching
from cotimage.rewards.learned import LearnedReward, shipped, shipped_weights
from cotimage.rewards.noise import NoiseReward
from cotimage.rewards.scene import SceneReward

_REGISTRY: dict[str, Callable[..., RewardModel]] = {}

#: The rewards shipped for the shapes world (their learned weights are in cotimage/assets).
SHIPPED: tuple[str, ...] = ("scene", "scene-strict", "clip", "pref", "pref-narrow", "orm")


def register(name: str, factory: Callable[..., RewardModel], overwrite: bool = False) -> None:
    """Make ``make(name, **kw)`` build ``factory(**kw)``. Refuses to replace a name unless asked.

    Raises:
        ValueError: for a taken name, one with characters the ensemble specs use (``+``, ``*``),
            or a factory that is not callable.
    """
    if not callable(factory):
        raise ValueError(f"reward {name!r}: factory={factory!r} must be callable, e.g. a RewardModel class")
    if not isinstance(name, str) or not re.fullmatch(ensemble.NAME_PATTERN, name):
        raise ValueError(f"reward name {name!r} must be letters, digits and _ . : / - only (no '+' or '*')")
    require_bool(f"reward {name!r}: overwrite", overwrite)
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
    """Build a reward model from a registered name, an ensemble spec, a reward model or a callable.

    Args:
        spec: A name (see :func:`names`), a weighted sum such as ``"scene+0.5*clip"`` (see
            :mod:`cotimage.rewards.ensemble`), a :class:`RewardModel`, or ``f(images, prompts)``.
        **kwargs: The factory's arguments, e.g. ``make("hpsv2", checkpoint=path)``; for an
            ensemble, one dict per term under the term's name.

    Raises:
        ValueError: for an unknown name or a malformed spec (the message lists the registered
            names), or keyword arguments given with a model or callable, which take none.
    """
    if isinstance(spec, type) and issubclass(spec, RewardModel):
        raise ValueError(f"reward={spec.__name__} is a class; pass an instance, e.g. make({spec.__name__}(...))")
    if isinstance(spec, RewardModel) or callable(spec):
        if kwargs:
            raise ValueError(f"reward={spec!r} is already built; keyword arguments {sorted(kwargs)} would be ignored")
        return spec if isinstance(spec, RewardModel) else FunctionReward(spec)
    if isinstance(spec, str) and ensemble.is_ensemble(spec):
        return ensemble.build(spec, make, _REGISTRY, **kwargs)
    if not isinstance(spec, str) or spec not in _REGISTRY:
        raise ValueError(f"reward={spec!r} is unknown; registered rewards: {names()} (or pass a callable)")
    factory = _REGISTRY[spec]
    try:  # a lazy factory checks against what it builds
        inspect.signature(getattr(factory, "target", lambda: factory)()).bind(**kwargs)
    except TypeError as error:  # e.g. make("scene-strict", batch_size=8): the factory takes no such argument
        raise ValueError(f"reward {spec!r}: {error}") from error
    except ValueError:  # a callable without a signature: its own call checks the arguments
        pass
    model = factory(**kwargs)
    if not isinstance(model, RewardModel):  # a factory may return f(images, prompts), as make() takes one
        if not callable(model) or isinstance(model, type):
            raise ValueError(f"reward {spec!r}: its factory returned {model!r}, not a RewardModel or a function of "
                             "(images, prompts)")
        model = FunctionReward(model)
    if model.name != spec:  # the contract: a reward is named by the spec it was made from
        model = copy.copy(model)  # a factory may hand out one instance under several names: rename a copy
        model.name = spec
    return model


def term_names(spec: str) -> list[str]:
    """The registered names a reward spec sums (one for a plain name).

    Raises:
        ValueError: for an unknown name or a malformed ensemble spec.
    """
    terms = [name for _, name in ensemble.parse(spec, _REGISTRY)] if ensemble.is_ensemble(spec) else [spec]
    if terms[0] not in _REGISTRY:
        raise ValueError(f"reward={spec!r} is unknown; registered rewards: {names()}")
    return terms


def weights_digest(spec: str) -> dict[str, str]:
    """The SHA-256 (first 16 hex digits) of the shipped weights file each term of a reward spec loads.

    Terms without shipped weights (the checker, your own rewards) are left out. Benchmarks keep
    this with a run's settings, so retrained weights under the same name never pass for the old.

    Raises:
        ValueError: for an unknown name or a malformed ensemble spec (see :func:`make`).
    """
    paths = {name: shipped_weights(name) for name in term_names(spec)}
    return {name: file_digest(path) for name, path in paths.items() if path.is_file()}


def _lazy(module: str, attribute: str) -> Callable[..., RewardModel]:
    """A factory that imports its module on first use: open_clip and transformers take seconds to import."""

    def target() -> Callable[..., RewardModel]:
        return getattr(importlib.import_module(module), attribute)

    def factory(**kwargs: Any) -> RewardModel:
        return target()(**kwargs)

    factory.target = target  # make() checks keyword arguments against it
    return factory


register("scene", SceneReward)
register("scene-strict", lambda: SceneReward(strict=True))
register("clip", _lazy("cotimage.rewards.clip", "shapes_clip"))
register("pref", partial(shipped, "pref"))
register("pref-narrow", partial(shipped, "pref-narrow"))
register("orm", partial(shipped, "orm"))
register("noise", NoiseReward)
register("clipscore", _lazy("cotimage.rewards.clip", "clipscore"))
register("hpsv2", _lazy("cotimage.rewards.clip", "hpsv2"))
register("pickscore", _lazy("cotimage.rewards.pickscore", "PickScoreReward"))

#: The rewards whose results a weights digest (or the checker's version, for ``scene``) pins down;
#: a benchmark cannot tell when another reward's code changes.
FINGERPRINTED: frozenset[str] = frozenset(SHIPPED) | {"noise"}

__all__ = [
    "SHIPPED", "EnsembleReward", "FunctionReward", "GeneralizationResult", "LearnedReward", "MatchingResult",
    "FINGERPRINTED", "NoiseReward", "RewardModel", "SceneReward", "generalization", "make", "matching", "names", "register",
    "term_names", "weights_digest",
]
