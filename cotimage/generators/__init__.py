"""Text-to-image generators behind one contract (see :mod:`cotimage.generators.base`).

>>> from cotimage import generators
>>> gen = generators.load("shapes")          # the embedded default, offline
>>> images = gen.generate(["a red circle above a blue square"], seed=0)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cotimage.files import file_digest
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
from cotimage.generators.shapes import ASSET, ShapesGenerator, ShapesPolicy


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
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"generator={name!r} is unknown; choose one of {names()}")
    return _REGISTRY[name](**kwargs)


def weights_digest(name: str) -> dict[str, str]:
    """Fingerprints of the weights ``load(name)`` reads, so results computed from other weights are told apart.

    ``shapes``: the shipped policy file's digest. ``janus-pro``: the model directory in
    ``$COTIMAGE_JANUS_PATH`` and its config.json's digest (Janus-Pro-1B and -7B differ there);
    empty when the variable is unset (loading then fails, naming it).

    Raises:
        ValueError: for an unknown name.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"generator={name!r} is unknown; choose one of {names()}")
    if name == "shapes":
        return {ASSET.name: file_digest(ASSET)}
    from cotimage.generators.janus import PATH_ENV  # the one other registered generator

    directory = os.environ.get(PATH_ENV)
    config = Path(directory or "") / "config.json"
    return {"path": str(Path(directory).resolve()), "config.json": file_digest(config)} if directory and config.is_file() else {}


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
    "ShapesPolicy", "TokenScores", "as_generator", "load", "names", "process_logits", "weights_digest",
]
