"""REINFORCE: the score-function gradient of the image's reward, with a baseline."""

from __future__ import annotations

import torch

from cotimage.agents.common.agent import Agent
from cotimage.agents.reinforce.config import REINFORCEConfig


def baseline_advantages(rewards: torch.Tensor, baseline: str, group_size: int = 1) -> torch.Tensor:
    """``r - b`` with ``b`` 0 (``"none"``), the batch mean (``"batch"``) or leave-one-out (``"rloo"``).

    RLOO's baseline for image i of a group of k is the mean of the other k - 1 rewards.
    """
    if baseline == "none":
        return rewards.clone()
    if baseline == "batch":
        return rewards - rewards.mean()
    grouped = rewards.view(-1, group_size)
    others = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others).reshape(-1)


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
