"""GRPO: group-relative advantages and a clipped surrogate, no value function."""

from __future__ import annotations

import torch

from cotimage.agents.common.agent import Agent
from cotimage.agents.common.config import require
from cotimage.agents.common.rollout import grouped
from cotimage.agents.grpo.config import IMPORTANCE_LEVELS, LOSS_TYPES, SCALE_REWARDS, GRPOConfig


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str, epsilon: float = 1e-4) -> torch.Tensor:
    """``(r - mean_group) / (std + eps)``; rows of one group are consecutive.

    ``scale``: ``"group"`` (std of the group), ``"batch"`` (std of the batch) or ``"none"``.

    Raises:
        ValueError: if ``scale`` is not one of those, or ``group_size`` is not an int >= 2
            dividing ``len(rewards)``.
    """
    require(scale in SCALE_REWARDS, "scale", scale, f"is not allowed; choose one of {list(SCALE_REWARDS)}")
    groups = grouped(rewards, group_size)
    centred = groups - groups.mean(1, keepdim=True)
    if scale == "group":
        centred = centred / (groups.std(1, keepdim=True) + epsilon)
    elif scale == "batch":
        centred = centred / (rewards.std() + epsilon)
    return centred.reshape(-1)


def k3_kl(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0)."""
    delta = ref_log_probs - log_probs
    return torch.exp(delta) - delta - 1


def grpo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    ref_log_probs: torch.Tensor | None = None,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.0,
    loss_type: str = "grpo",
    importance_sampling_level: str = "token",
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO objective on (B, T) token log-probs and (B,) advantages.

    ``loss_token = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) + beta * KL_k3``,
    then averaged as ``loss_type`` says (see :class:`GRPOConfig`).

    Raises:
        ValueError: if ``loss_type`` or ``importance_sampling_level`` is not one of
            :class:`GRPOConfig`'s.
    """
    require(loss_type in LOSS_TYPES, "loss_type", loss_type, f"is not allowed; choose one of {list(LOSS_TYPES)}")
    require(
        importance_sampling_level in IMPORTANCE_LEVELS,
        "importance_sampling_level", importance_sampling_level, f"is not allowed; choose one of {list(IMPORTANCE_LEVELS)}",
    )
    log_ratio = log_probs - old_log_probs
    if importance_sampling_level == "sequence":  # GSPO: one ratio per image
        log_ratio = log_ratio.mean(-1, keepdim=True).expand_as(log_probs)
    ratio = torch.exp(log_ratio)
    adv = advantages[:, None]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    kl = k3_kl(log_probs, ref_log_probs) if ref_log_probs is not None else torch.zeros_like(log_probs)
    per_token = per_token + beta * kl
    batch, length = per_token.shape
    if loss_type == "grpo":
        loss = per_token.mean(-1).mean()
    elif loss_type in ("bnpo", "dapo"):  # one process: DAPO's global token mean is BNPO's
        loss = per_token.sum() / per_token.numel()
    else:  # dr_grpo
        loss = per_token.sum() / (batch * (max_tokens or length))
    clip_fraction = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    stats = {"kl": float(kl.detach().mean()), "clip_fraction": float(clip_fraction.float().mean())}
    return loss, stats


class GRPO(Agent):
    """GRPO on ``CotImage-v0``: each batch is ``batch_size / group_size`` prompts x ``group_size`` images.

    Example:
        >>> agent = GRPO("CotImage-v0", config=GRPOConfig(batch_size=32, group_size=4))
        >>> agent.learn(total_images=2048)
    """

    config_class = GRPOConfig
    config: GRPOConfig

    @property
    def uses_reference(self) -> bool:
        return self.config.beta > 0

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        rollout = self.collect({"group_size": cfg.group_size})
        self._last_images = rollout.images
        advantages = group_advantages(rollout.scores, cfg.group_size, cfg.scale_rewards, cfg.advantage_epsilon)
        prompts, tokens, sampling = rollout.prompt_batch, rollout.tokens, cfg.loss_sampling
        with torch.no_grad():
            same = sampling == cfg.sampling
            old = rollout.log_probs if same else self.policy.log_prob(prompts, tokens, sampling)
            ref = self.reference.log_prob(prompts, tokens, sampling) if self.reference is not None else None
        for _ in range(cfg.num_iterations):
            scores = self.policy.score_tokens(prompts, tokens, sampling)
            loss, stats = grpo_loss(
                scores.log_probs, old, advantages, ref,
                epsilon_low=cfg.epsilon_low, epsilon_high=cfg.epsilon_high, beta=cfg.beta,
                loss_type=cfg.loss_type, importance_sampling_level=cfg.importance_sampling_level,
                max_tokens=self.generator.num_image_tokens,
            )
            grad_norm = self.optimize(loss)
        return {
            **self.reward_metrics(rollout),
            "train/loss": loss.item(),
            "train/kl": stats["kl"],
            "train/clip_fraction": stats["clip_fraction"],
            "train/entropy": float(scores.entropy.detach().mean()),
            "train/grad_norm": grad_norm,
        }
