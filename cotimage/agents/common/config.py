"""Fields every agent's config shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from cotimage.generators import SamplingConfig


@dataclass
class AgentConfig:
    """Shared agent settings; each algorithm's config extends it.

    Attributes:
        learning_rate: Adam learning rate.
        batch_size: Images generated per update (the vector env's ``num_envs``).
        max_grad_norm: Gradient-norm clip.
        temperature: Sampling temperature of rollouts.
        top_k: Sampling top-k of rollouts (``None``: all tokens).
        cfg_weight: Classifier-free guidance weight of rollouts (1: none).
        loss_distribution: Which distribution the loss's log-probs use: ``"sampling"`` (the
            distribution the tokens were drawn from, exact on-policy ratios) or
            ``"conditional"`` (the unguided conditional branch at temperature 1, as T2I-R1).
        eval_every: Evaluate every this many updates (0: never).
        eval_suite: Suite for periodic evaluation.
        eval_prompts: Prompts per category in periodic evaluation.
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
    eval_prompts: int = 20
    eval_images_per_prompt: int = 2

    def __post_init__(self) -> None:
        self.sampling  # validates temperature, top_k and cfg_weight  # noqa: B018
        positive = {"learning_rate": self.learning_rate, "batch_size": self.batch_size, "max_grad_norm": self.max_grad_norm}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name}={value!r} must be > 0")
        if self.loss_distribution not in ("sampling", "conditional"):
            raise ValueError(f"loss_distribution={self.loss_distribution!r} is not allowed; choose 'sampling' or 'conditional'")
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every} must be >= 0")

    @property
    def sampling(self) -> SamplingConfig:
        """The rollouts' sampling distribution."""
        return SamplingConfig(self.temperature, self.top_k, self.cfg_weight)

    @property
    def loss_sampling(self) -> SamplingConfig:
        """The distribution the loss's log-probabilities are taken under."""
        return self.sampling if self.loss_distribution == "sampling" else SamplingConfig()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; fields: {sorted(known)}")
        return cls(**data)


def require(condition: bool, field: str, value: Any, rule: str) -> None:
    """Raise ``ValueError('field=value rule')`` unless ``condition``: one message shape for all configs."""
    if not condition:
        raise ValueError(f"{field}={value!r} {rule}")
