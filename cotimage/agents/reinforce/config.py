"""REINFORCE's configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cotimage.agents.common.config import AgentConfig, require

BASELINES = ("none", "batch", "rloo")


@dataclass
class REINFORCEConfig(AgentConfig):
    """REINFORCE (Williams, 1992) with a choice of baseline.

    Attributes:
        baseline: ``"none"``, ``"batch"`` (the batch's mean reward) or ``"rloo"`` (REINFORCE
            leave-one-out: the mean reward of the other ``group_size - 1`` images of the prompt).
        group_size: Images per prompt (consecutive rows share a prompt); must divide
            ``batch_size``, and be >= 2 for ``"rloo"``.
        ent_coef: Weight of the entropy bonus.
    """

    learning_rate: float = 3e-5
    baseline: str = "rloo"
    group_size: int = 4
    ent_coef: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.baseline in BASELINES, "baseline", self.baseline, f"is not allowed; choose one of {list(BASELINES)}")
        require(self.group_size >= 1, "group_size", self.group_size, "must be >= 1")
        require(self.batch_size % self.group_size == 0, "group_size", self.group_size, f"must divide batch_size={self.batch_size}")
        require(self.baseline != "rloo" or self.group_size >= 2, "group_size", self.group_size, "must be >= 2 for baseline='rloo'")
        require(self.ent_coef >= 0, "ent_coef", self.ent_coef, "must be >= 0")
