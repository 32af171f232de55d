"""Weighted sums of registered rewards, by spec: ``rewards.make("scene+0.5*clip")``.

Spec grammar: terms joined by ``+``; a term is ``NAME`` or ``WEIGHT*NAME``, ``WEIGHT`` a
nonzero float such as ``0.5``, ``-1`` or ``2e-1``. Registry names may contain ``-``
(``scene-strict``), so ``-`` is no operator: subtract with a negative weight,
``scene+-0.1*clip``. T2I-R1's reward, for example, is a plain sum of four models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from cotimage.rewards.base import RewardModel

#: The largest float32: ensemble scores are float32 sums.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Characters a registry name may use; anything else would be read as spec syntax.
NAME_PATTERN = r"[A-Za-z0-9_.:/-]+"
_WEIGHT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: One term and the ``+`` after it (or the end): a ``+`` inside a weight (``1e+1``, ``+0.5``) separates nothing.
_TERM = re.compile(rf"\s*(?:({_WEIGHT})\s*\*\s*)?({NAME_PATTERN})\s*(\+|$)")


def is_ensemble(spec: str) -> bool:
    """Whether a reward spec is a weighted sum rather than one name."""
    return "+" in spec or "*" in spec


def parse(spec: str, known: Collection[str]) -> list[tuple[float, str]]:
    """``"scene+0.5*clip"`` -> ``[(1.0, "scene"), (0.5, "clip")]``.

    Raises:
        ValueError: for a malformed term, a zero weight, a repeated name, or a name not in
            ``known``; the message quotes the spec and, for unknown names, the registry.
    """
    terms: list[tuple[float, str]] = []
    position, more = 0, True
    while more:
        match = _TERM.match(spec, position)
        if match is None:
            rest = spec[position:].split("+")[0].strip()
            raise ValueError(f"reward spec {spec!r}: term {rest!r} is not NAME or WEIGHT*NAME (e.g. 'scene+0.5*clip')")
        weight, name = float(match.group(1) or 1.0), match.group(2)
        position, more = match.end(), match.group(3) == "+"
        if name not in known:
            raise ValueError(f"reward spec {spec!r}: term {name!r} is unknown; registered rewards: {sorted(known)}")
        if weight == 0 or not abs(weight) <= FLOAT32_MAX:  # scores are float32: a larger weight overflows them
            raise ValueError(f"reward spec {spec!r}: term {name!r} has weight {weight}; weights must be nonzero and "
                             "finite in float32 (drop a term instead of weighting it 0)")
        if name in (n for _, n in terms):
            raise ValueError(f"reward spec {spec!r}: term {name!r} appears twice; add its weights into one term")
        terms.append((weight, name))
    return terms


class EnsembleReward(RewardModel):
    """``sum_k w_k * r_k(images, prompts)``; each term is checked as a reward of its own.

    Details per image hold each term's score under its name, and each term's own details
    prefixed with ``"name/"``.

    Args:
        terms: ``(weight, reward)`` pairs.
        name: The spec the ensemble was built from.
    """

    def __init__(self, terms: Sequence[tuple[float, RewardModel]], name: str) -> None:
        self.terms = list(terms)
        self.name = name
        lows = [min(w * rm.range[0], w * rm.range[1]) for w, rm in self.terms]
        highs = [max(w * rm.range[0], w * rm.range[1]) for w, rm in self.terms]
        self.range = (float(sum(lows)), float(sum(highs)))
        if any(np.isfinite(bound) and abs(bound) > FLOAT32_MAX for bound in self.range):
            raise ValueError(f"reward spec {name!r}: its scores could reach {self.range}, beyond float32's range "
                             f"(+-{FLOAT32_MAX:.3g}); use smaller weights")
        self.needs_scenes = any(rm.needs_scenes for _, rm in self.terms)

    def details(self, images: np.ndarray, prompts: Sequence[Any]) -> tuple[np.ndarray, list[dict]]:
        total = np.zeros(len(images), np.float32)
        details: list[dict] = [{} for _ in range(len(images))]
        for weight, rm in self.terms:
            scores, term_details = rm.score_with_details(images, prompts)
            total += weight * scores
            for row, score, extra in zip(details, scores, term_details):
                row[rm.name] = float(score)
                row.update({f"{rm.name}/{key}": value for key, value in extra.items()})
        return total, details

    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        return self.details(images, prompts)[0]


def build(spec: str, make: Callable[..., RewardModel], known: Collection[str], **kwargs: Any) -> EnsembleReward:
    """Build the ensemble a spec describes, making each term with ``make(name, **kwargs[name])``.

    Raises:
        ValueError: for a bad spec (see :func:`parse`), a keyword that names no term, or a term's
            arguments that are not a dict.
    """
    terms = parse(spec, known)
    stray = sorted(set(kwargs) - {name for _, name in terms})
    if stray:
        raise ValueError(
            f"reward spec {spec!r}: keyword arguments {stray} name no term; pass each term's arguments as a "
            "dict under its name, e.g. make('scene+hpsv2', hpsv2={'checkpoint': path})"
        )
    not_dicts = sorted(name for name, value in kwargs.items() if not isinstance(value, dict))
    if not_dicts:
        raise ValueError(f"reward spec {spec!r}: keyword arguments {not_dicts} must be dicts of a term's arguments, "
                         f"e.g. make({spec!r}, {not_dicts[0]}={{...}})")
    return EnsembleReward([(w, make(name, **kwargs.get(name, {}))) for w, name in terms], spec)
