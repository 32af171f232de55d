"""Native PPO: KV-cached rollouts, GAE over image tokens, clipped policy and value losses."""

from __future__ import annotations

import torch

from cotimage.agents.common.agent import Agent
from cotimage.agents.ppo.config import PPOConfig


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation on (B, T) per-token rewards and values.

    Every episode ends after its T-th token, so the value after the last token is 0.
    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages, advantages + values


def ppo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    *,
    clip_range: float = 0.2,
    clip_range_vf: float | None = None,
    vf_coef: float = 0.5,
    ent_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate + value loss - entropy bonus, averaged over tokens."""
    ratio = torch.exp(log_probs - old_log_probs)
    policy_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
    value_error = (values - returns) ** 2
    if clip_range_vf is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        value_error = torch.max(value_error, (clipped - returns) ** 2)
    value_loss = 0.5 * value_error.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy.mean()
    stats = {
        "policy_loss": float(policy_loss.detach()),
        "value_loss": float(value_loss.detach()),
        "clip_fraction": float(((ratio - 1).abs() > clip_range).float().mean()),
        "approx_kl": float(((ratio - 1) - torch.log(ratio)).detach().mean()),
    }
    return loss, stats


class PPO(Agent):
    """PPO on ``CotImage-v0`` with the value head on the policy's shared trunk (no separate critic).

    Per-token rewards come from the env: the score at the last token plus any process-reward
    shaping, minus ``kl_coef`` times the per-token log-ratio to the reference.
    """

    config_class = PPOConfig
    config: PPOConfig
    needs_value_head = True

    @property
    def uses_reference(self) -> bool:
        return self.config.kl_coef > 0

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        rollout = self.collect()
        self._last_images = rollout.images
        prompts, tokens, sampling = rollout.prompt_batch, rollout.tokens, cfg.loss_sampling
        with torch.no_grad():
            old = rollout.log_probs if sampling == cfg.sampling else self.policy.log_prob(prompts, tokens, sampling)
            rewards = rollout.rewards.clone()
            kl = torch.zeros(())
            if self.reference is not None:
                log_ratio = old - self.reference.log_prob(prompts, tokens, sampling)
                rewards -= cfg.kl_coef * log_ratio
                kl = log_ratio.mean()
            advantages, returns = gae(rewards, rollout.values, cfg.gamma, cfg.gae_lambda)
        stats_sum: dict[str, float] = {}
        steps = 0
        for _ in range(cfg.n_epochs):
            order = torch.randperm(len(rollout), generator=self.sampler, device=self.sampler.device).cpu()
            for rows in order.split(cfg.minibatch_size):
                adv = advantages[rows]
                if cfg.normalize_advantage:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                scores = self.policy.score_tokens(prompts.select(rows), tokens[rows], sampling)
                loss, stats = ppo_loss(
                    scores.log_probs, old[rows], adv, scores.values, rollout.values[rows], returns[rows], scores.entropy,
                    clip_range=cfg.clip_range, clip_range_vf=cfg.clip_range_vf, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
                )
                stats["loss"] = loss.item()
                stats["grad_norm"] = self.optimize(loss)
                stats["entropy"] = float(scores.entropy.detach().mean())
                for key, value in stats.items():
                    stats_sum[key] = stats_sum.get(key, 0.0) + value
                steps += 1
        return {
            **self.reward_metrics(rollout),
            "train/kl": float(kl),
            **{f"train/{k}": v / steps for k, v in stats_sum.items()},
        }
