"""REINFORCE: the score-function gradient of the image's reward, with a baseline."""

from __future__ import annotations

import torch

from cotimage.agents.common.agent import Agent
from cotimage.agents.common.config import require
from cotimage.agents.common.rollout import grouped
from cotimage.agents.reinforce.config import BASELINES, REINFORCEConfig


def baseline_advantages(rewards: torch.Tensor, baseline: str, group_size: int = 1) -> torch.Tensor:
    """``r - b`` with ``b`` 0 (``"none"``), the batch mean (``"batch"``) or leave-one-out (``"rloo"``).

    RLOO's baseline for image i of a group of k (consecutive rows) is the mean of the other
    k - 1 rewards; only RLOO uses ``group_size``.

    Raises:
        ValueError: if ``baseline`` is not one of those, or for ``"rloo"`` if ``group_size`` is
            not an int >= 2 dividing ``len(rewards)``.
    """
    require(baseline in BASELINES, "baseline", baseline, f"is not allowed; choose one of {list(BASELINES)}")
    if baseline == "none":
        return rewards.clone()
    if baseline == "batch":
        return rewards - rewards.mean()
    groups = grouped(rewards, group_size)
    others = (groups.sum(1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


def reinforce_loss(
    log_probs: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor, ent_coef: float = 0.0
) -> torch.Tensor:
    """``-mean_i mean_t A_i * log pi(a_it) - ent_coef * mean entropy`` on (B, T) log-probs."""
    return -(advantages[:, None] * log_probs).mean() - ent_coef * entropy.mean()


class REINFORCE(Agent):
    """REINFORCE on ``CotImage-v0``, on-policy, one gradient step per batch."""

    config_class = REINFORCEConfig
    config: REINFORCEConfig

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        rollout = self.collect({"group_size": cfg.group_size})
        self._last_images = rollout.images
        advantages = baseline_advantages(rollout.scores, cfg.baseline, cfg.group_size)
        scores = self.policy.score_tokens(rollout.prompt_batch, rollout.tokens, cfg.loss_sampling)
        loss = reinforce_loss(scores.log_probs, advantages, scores.entropy, cfg.ent_coef)
        grad_norm = self.optimize(loss)
        return {
            **self.reward_metrics(rollout),
            "train/loss": loss.item(),
            "train/entropy": float(scores.entropy.detach().mean()),
            "train/grad_norm": grad_norm,
        }
