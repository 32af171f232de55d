"""Fields every agent's config shares, and the checks every config runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import cache
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from cotimage import suites
from cotimage.checks import is_finite, is_int
from cotimage.generators import SamplingConfig


def require(condition: bool, field: str, value: Any, rule: str) -> None:
    """Raise ``ValueError('field=value rule')`` unless ``condition``: one message shape for all configs."""
    if not condition:
        raise ValueError(f"{field}={value!r} {rule}")


#: Field types every config checks, by annotation (alone or ``| None``): the test, and what it asks for.
_SCALAR_CHECKS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda value: isinstance(value, (bool, np.bool_)), "a bool"),
    int: (is_int, "an int"),
    float: (is_finite, "a finite number"),
}


@cache
def _scalar_fields(cls: type) -> tuple[tuple[str, type, bool], ...]:
    """``(name, type, optional)`` of the dataclass ``cls``'s fields annotated ``bool``, ``int`` or ``float``.

    ``optional``: the annotation also allows ``None`` (``int | None`` or ``Optional[int]``).
    """
    hints = get_type_hints(cls)
    found = []
    for f in fields(cls):
        hint = hints[f.name]
        kinds = set(get_args(hint)) if get_origin(hint) in (Union, UnionType) else {hint}
        optional = NoneType in kinds
        kinds.discard(NoneType)
        if len(kinds) == 1 and (kind := kinds.pop()) in _SCALAR_CHECKS:
            found.append((f.name, kind, optional))
    return tuple(found)


def _check_scalar_fields(config: Any) -> None:
    """Check each bool, int and float field of the dataclass ``config`` by its annotation.

    Ints and floats must be finite numbers of the annotated kind (a bool is neither; an int is a
    valid float). Accepted values are stored as Python's ``bool``, ``int`` or ``float`` (NumPy
    scalars converted), so the config serialises to JSON.

    Raises:
        ValueError: naming the first field whose value is of the wrong type or not finite.
    """
    for name, kind, optional in _scalar_fields(type(config)):
        value = getattr(config, name)
        if optional and value is None:
            continue
        test, wanted = _SCALAR_CHECKS[kind]
        require(test(value), name, value, f"must be {'None or ' if optional else ''}{wanted}")
        setattr(config, name, kind(value))


@dataclass
class AgentConfig:
    """Shared agent settings; each algorithm's config extends it.

    Every config checks its fields at construction: bool, int and float fields by their
    annotated type (floats must be finite), and each field's range, so a bad value fails
    here, naming the field, rather than during training.

    Attributes:
        learning_rate: Adam learning rate.
        batch_size: Images generated per update (the vector env's ``num_envs``).
        max_grad_norm: Gradient-norm clip.
        temperature: Sampling temperature of rollouts.
        top_k: Sampling top-k of rollouts (``None``: all tokens).
        cfg_weight: Classifier-free guidance weight of rollouts (1: none).
        loss_distribution: Which distribution the loss's log-probs use: ``"sampling"`` (the
            distribution the tokens were drawn from, at its temperature and guidance, exact
            on-policy ratios) or ``"conditional"`` (the unguided conditional branch at
            temperature 1, as T2I-R1). Neither truncates to ``top_k`` (TRL's choice too): a
            token outside another policy's top k would get log-prob -inf, and the ratios and
            the KL to the reference inf or NaN.
        eval_every: Evaluate every this many updates (0: never).
        eval_suite: Suite for periodic evaluation (one of :data:`cotimage.suites.NAMES`).
        eval_prompts: Prompts per category in periodic evaluation (``None``: all of them).
        eval_images_per_prompt: Images per prompt in periodic evaluation.
    """

    learning_rate: float = 1e-5
    batch_size: int = 64
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    top_k: int | None = None
    cfg_weight: float = 1.0
    loss_distribution: str = "sampling"
    eval_every: int = 0
    eval_suite: str = "shapes/compbench-val"
    eval_prompts: int | None = 20
    eval_images_per_prompt: int = 2

    def __post_init__(self) -> None:
        _check_scalar_fields(self)
        self.sampling  # validates temperature, top_k and cfg_weight  # noqa: B018
        for name in ("learning_rate", "batch_size", "max_grad_norm"):
            require(getattr(self, name) > 0, name, getattr(self, name), "must be > 0")
        require(
            self.loss_distribution in ("sampling", "conditional"),
            "loss_distribution", self.loss_distribution, "is not allowed; choose 'sampling' or 'conditional'",
        )
        require(self.eval_every >= 0, "eval_every", self.eval_every, "must be >= 0")
        require(self.eval_suite in suites.NAMES, "eval_suite", self.eval_suite, f"is unknown; known suites: {list(suites.NAMES)}")
        require(self.eval_prompts is None or self.eval_prompts >= 1, "eval_prompts", self.eval_prompts, "must be None (all prompts) or >= 1")
        require(self.eval_images_per_prompt >= 1, "eval_images_per_prompt", self.eval_images_per_prompt, "must be >= 1")

    @property
    def sampling(self) -> SamplingConfig:
        """The rollouts' sampling distribution."""
        return SamplingConfig(self.temperature, self.top_k, self.cfg_weight)

    @property
    def loss_sampling(self) -> SamplingConfig:
        """The distribution the loss's log-probabilities are taken under (never top-k truncated)."""
        return self.sampling.replace(top_k=None) if self.loss_distribution == "sampling" else SamplingConfig()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; fields: {sorted(known)}")
        return cls(**data)
