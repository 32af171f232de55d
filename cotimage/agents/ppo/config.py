"""Native PPO's configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cotimage.agents.common.config import AgentConfig, require


@dataclass
class PPOConfig(AgentConfig):
    """PPO (Schulman et al., 2017) with a value head on the policy's trunk.

    Attributes:
        n_epochs: Passes over each batch.
        minibatch_size: Images per gradient step; must divide ``batch_size``.
        gamma: Discount per token; 1 (the default) treats the image as one outcome.
        gae_lambda: GAE's lambda. 1 (Monte Carlo returns minus the value baseline) by
            default: with the reward at the 64th token, lambda < 1 leans on a young critic for
            the early tokens, and native PPO drifted down with 0.95 (0.56 -> 0.24 scene reward
            on one prompt in 20 updates) where 1.0 learned (0.56 -> 0.84).
        clip_range: Policy ratio clip.
        clip_range_vf: Value clip around the rollout's values (``None``: unclipped).
        vf_coef: Weight of the value loss.
        ent_coef: Weight of the entropy bonus.
        kl_coef: Per-token KL penalty to the frozen reference, subtracted from the rewards
            (0 loads no reference).
        normalize_advantage: Normalise advantages per minibatch.
    """

    learning_rate: float = 3e-5
    n_epochs: int = 2
    minibatch_size: int = 32
    gamma: float = 1.0
    gae_lambda: float = 1.0
    clip_range: float = 0.2
    clip_range_vf: float | None = None
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    kl_coef: float = 0.0
    normalize_advantage: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_epochs >= 1, "n_epochs", self.n_epochs, "must be >= 1")
        require(self.minibatch_size >= 1 and self.batch_size % self.minibatch_size == 0, "minibatch_size", self.minibatch_size, f"must divide batch_size={self.batch_size}")
        require(
            self.minibatch_size >= 2 or not self.normalize_advantage, "minibatch_size", self.minibatch_size,
            "must be >= 2 with normalize_advantage=True: one image's tokens normalised against each other cancel its reward",
        )
        require(0 <= self.gamma <= 1, "gamma", self.gamma, "must lie in [0, 1]")
        require(0 <= self.gae_lambda <= 1, "gae_lambda", self.gae_lambda, "must lie in [0, 1]")
        require(self.clip_range > 0, "clip_range", self.clip_range, "must be > 0")
        require(self.clip_range_vf is None or self.clip_range_vf > 0, "clip_range_vf", self.clip_range_vf, "must be None or > 0")
        for name in ("vf_coef", "ent_coef", "kl_coef"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
