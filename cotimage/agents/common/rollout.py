"""Collect image episodes through the vector env with the policy's KV cache.

Every agent gathers experience here, so none bypasses the environment: the policy picks
each token from its cached next-token distribution, the env records it, and the env
decodes and scores the finished images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cotimage.agents.common.config import require
from cotimage.checks import is_int
from cotimage.envs import CotImageVectorEnv
from cotimage.envs.core import text_of
from cotimage.generators import Policy, PromptBatch, SamplingConfig


@dataclass
class Rollout:
    """One batch of finished images.

    Attributes:
        prompts: The prompt (record or text) of each row.
        prompt_batch: The prompts encoded for the policy.
        tokens: (N, T) image tokens drawn.
        log_probs: (N, T) their log-probabilities under the sampling distribution.
        values: (N, T) value-head estimates before each token, or ``None``.
        rewards: (N, T) per-step env rewards (the score at the end, plus any shaping).
        scores: (N,) the reward model's score of each finished image.
        images: (N, H, W, 3) the finished images.
        details: Per-image reward details (per-criterion outcomes for scene rewards).
    """

    prompts: list[Any]
    prompt_batch: PromptBatch
    tokens: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor | None
    rewards: torch.Tensor
    scores: torch.Tensor
    images: np.ndarray
    details: list[dict]

    def __len__(self) -> int:
        return len(self.tokens)


def grouped(values: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N,) per-image values as (N / group_size, group_size), a row per prompt.

    :func:`collect` with ``{"group_size": k}`` puts each prompt's k images in consecutive rows.

    Raises:
        ValueError: unless ``group_size`` is an int >= 2 (a group compares images) dividing N.
    """
    require(is_int(group_size) and group_size >= 2, "group_size", group_size, "must be an int >= 2")
    require(len(values) % group_size == 0, "group_size", group_size, f"must divide the number of rows, {len(values)}")
    return values.view(-1, group_size)


def _per_image(vector_info: dict[str, np.ndarray], n: int) -> list[dict]:
    """Undo gymnasium's batching of per-env info dicts (a value array and a ``_key`` mask per key)."""
    return [
        {k: v[i].item() for k, v in vector_info.items() if not k.startswith("_") and vector_info[f"_{k}"][i]}
        for i in range(n)
    ]


@torch.no_grad()
def collect(
    envs: CotImageVectorEnv,
    policy: Policy,
    sampling: SamplingConfig,
    generator: torch.Generator,
    options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Rollout:
    """Reset ``envs`` with ``options`` and draw one image per sub-env with ``policy``.

    Args:
        envs: The native vector env (its sub-envs step as one batch).
        policy: Chooses tokens from its cached next-token distribution.
        sampling: Temperature, top-k and guidance of the behaviour distribution.
        generator: Seeded torch RNG for token choices.
        options: Reset options, e.g. ``{"group_size": 4}`` or ``{"prompts": [...]}``.
        seed: Seed for the env's prompt RNG (first collection only; later ones continue it).
    """
    envs.reset(seed=seed, options=options)
    prompts = envs.prompts
    batch = envs.generator.encode_prompts([text_of(p) for p in prompts])
    state = policy.start(batch, sampling)
    steps = envs.generator.num_image_tokens
    tokens, log_probs, values, rewards = [], [], [], []
    for t in range(steps):
        token = torch.multinomial(state.log_probs.exp(), 1, generator=generator).squeeze(1)
        tokens.append(token)
        log_probs.append(state.log_probs.gather(1, token[:, None]).squeeze(1))
        values.append(state.values)
        _, reward, terminated, _, info = envs.step(token.cpu().numpy())
        rewards.append(reward)
        if t + 1 < steps:
            policy.advance(state, token)
    if not terminated.all():
        raise RuntimeError("the env did not finish its images after num_image_tokens steps")
    final = info["final_info"]
    return Rollout(
        prompts=prompts,
        prompt_batch=batch,
        tokens=torch.stack(tokens, 1),
        log_probs=torch.stack(log_probs, 1),
        values=torch.stack(values, 1) if values[0] is not None else None,
        rewards=torch.as_tensor(np.stack(rewards, 1), device=policy.device),  # one copy, not one per token
        scores=torch.as_tensor(np.asarray(final["score"], np.float32), device=policy.device),
        images=np.stack(final["image"]),
        details=_per_image(final["reward_details"], len(prompts)),
    )
