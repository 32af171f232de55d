"""GRPO's configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cotimage.agents.common.config import AgentConfig, require

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")


@dataclass
class GRPOConfig(AgentConfig):
    """Group Relative Policy Optimization (Shao et al., 2024), with TRL's variants.

    Attributes:
        group_size: Images per prompt; advantages compare images of one prompt. Must divide
            ``batch_size`` (the study and T2I-R1 use 4 and 8).
        scale_rewards: Divide group-centred rewards by the group's std (``"group"``), the
            batch's std (``"batch"``) or not at all (``"none"``, Dr. GRPO).
        epsilon_low: Lower clip of the importance ratio, ``1 - epsilon_low``.
        epsilon_high: Upper clip, ``1 + epsilon_high`` (DAPO's clip-higher uses 0.28).
        beta: Weight of the k3 KL estimate to the frozen reference; 0 loads no reference.
        loss_type: How token losses are averaged: ``"grpo"`` (per-sequence mean, then
            batch mean), ``"bnpo"`` (mean over the batch's tokens), ``"dr_grpo"`` (sum over
            batch x ``max_tokens``), ``"dapo"`` (global token mean). Images have a fixed
            number of tokens, so these differ only by constant factors here; they matter
            for backends with variable lengths.
        importance_sampling_level: ``"token"`` ratios, or ``"sequence"`` (GSPO: the
            geometric mean of token ratios per image).
        num_iterations: Gradient steps on each batch (1: strictly on-policy, as the study).
        advantage_epsilon: Added to the std when scaling advantages; > 0, so a group whose
            images all score the same gets advantages 0, not NaN.
    """

    learning_rate: float = 3e-5
    group_size: int = 4
    scale_rewards: str = "group"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.01
    loss_type: str = "grpo"
    importance_sampling_level: str = "token"
    num_iterations: int = 1
    advantage_epsilon: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.group_size >= 2, "group_size", self.group_size, "must be >= 2 (advantages compare images of one prompt)")
        require(self.batch_size % self.group_size == 0, "group_size", self.group_size, f"must divide batch_size={self.batch_size}")
        require(self.scale_rewards in SCALE_REWARDS, "scale_rewards", self.scale_rewards, f"is not allowed; choose one of {list(SCALE_REWARDS)}")
        require(self.loss_type in LOSS_TYPES, "loss_type", self.loss_type, f"is not allowed; choose one of {list(LOSS_TYPES)}")
        require(self.importance_sampling_level in IMPORTANCE_LEVELS, "importance_sampling_level", self.importance_sampling_level, f"is not allowed; choose one of {list(IMPORTANCE_LEVELS)}")
        for name in ("epsilon_low", "epsilon_high", "beta"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
        require(self.num_iterations >= 1, "num_iterations", self.num_iterations, "must be >= 1")
        require(self.advantage_epsilon > 0, "advantage_epsilon", self.advantage_epsilon, "must be > 0 (a tied group's std is 0)")
