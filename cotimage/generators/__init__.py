"""Text-to-image generators behind one contract (see :mod:`cotimage.generators.base`).

>>> from cotimage import generators
>>> gen = generators.load("shapes")          # the embedded default, offline
>>> images = gen.generate(["a red circle above a blue square"], seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cotimage.generators.base import (
    DecodeState,
    Generator,
    Policy,
    PromptBatch,
    SampleOutput,
    SamplingConfig,
    TokenScores,
    process_logits,
)
from cotimage.generators.shapes import ShapesGenerator, ShapesPolicy


def _janus(**kwargs: Any) -> Generator:
    from cotimage.generators.janus import JanusGenerator  # transformers' Janus imports lazily

    return JanusGenerator(**kwargs)


_REGISTRY: dict[str, Callable[..., Generator]] = {"shapes": ShapesGenerator, "janus-pro": _janus}


def names() -> list[str]:
    """Registered generator names."""
    return sorted(_REGISTRY)


def load(name: str = "shapes", **kwargs: Any) -> Generator:
    """Load a generator by name (``"shapes"`` or ``"janus-pro"``); kwargs go to its constructor.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"generator={name!r} is unknown; choose one of {names()}")
    return _REGISTRY[name](**kwargs)


def as_generator(value: Generator | Policy | str) -> Generator:
    """A generator from a generator, a name, or a bare shapes policy (wrapped with its tokenizers)."""
    if isinstance(value, Generator):
        return value
    if isinstance(value, str):
        return load(value)
    if isinstance(value, ShapesPolicy):
        return ShapesGenerator(policy=value)
    raise ValueError(f"expected a Generator, a generator name {names()} or a ShapesPolicy, got {type(value).__name__}")


__all__ = [
    "DecodeState", "Generator", "Policy", "PromptBatch", "SampleOutput", "SamplingConfig", "ShapesGenerator",
    "ShapesPolicy", "TokenScores", "as_generator", "load", "names", "process_logits",
]
