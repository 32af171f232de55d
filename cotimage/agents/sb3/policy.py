"""A stable-baselines3 actor-critic policy that *is* the pretrained shapes transformer.

SB3's ``ActorCriticPolicy`` is features extractor -> ``mlp_extractor`` -> ``action_net`` /
``value_net``. Here:

- the features extractor runs the transformer trunk over the observation (prompt ids and the
  tokens drawn so far) and returns the final hidden state at the row's current step;
- ``mlp_extractor`` is the identity (``net_arch=[]``);
- ``action_net`` is the transformer's own pretrained next-token head, not a fresh ``Linear``,
  so the policy's first action distribution is the generator's next-token distribution;
- ``value_net`` is the generator's value head on the same trunk (zero-initialised when new).

``ortho_init`` is forced off: SB3's orthogonal init would overwrite the pretrained weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule

from cotimage.generators import PromptBatch
from cotimage.generators.shapes import PAD, ShapesPolicy


def final_hidden(policy: ShapesPolicy, prompts: PromptBatch, fed: torch.Tensor) -> torch.Tensor:
    """(B, t + 1, d) normalised hidden states at the positions that predict image tokens 0..t: the heads' input."""
    return policy.ln_f(policy.hidden_states(prompts, fed))


def shared_prefixes(ids: torch.Tensor, tokens: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group rows so that one teacher-forced pass serves every row whose drawn tokens it extends.

    Row ``i`` is read exactly off the pass of any row ``j`` with the same prompt whose tokens
    start with row ``i``'s ``steps[i]`` drawn ones (causal attention). SB3's minibatches hold
    many steps of the same few images, so this cuts a training pass by about the number of
    rows per image. Sorting rows lexicographically (undrawn -1 first) puts every extension of
    a prefix right after it; runs in which each row extends the previous one share the pass of
    the run's last row.

    Returns:
        ``(reps, slot)``: the rows whose passes are run (R,), and for each row the index into
        ``reps`` of the pass it is read from (B,).
    """
    ids_np, tokens_np, steps_np = (x.detach().cpu().numpy() for x in (ids, tokens, steps.reshape(-1)))
    order = np.lexsort(np.concatenate([ids_np, tokens_np], 1).T[::-1])
    ids_np, tokens_np, steps_np = ids_np[order], tokens_np[order], steps_np[order]
    drawn = np.arange(tokens_np.shape[1])[None] < steps_np[:-1, None]
    extends = (ids_np[1:] == ids_np[:-1]).all(1) & ((tokens_np[1:] == tokens_np[:-1]) | ~drawn).all(1)
    ends = np.flatnonzero(np.append(~extends, True))  # sorted position of each run's last row
    slot = np.empty(len(order), np.int64)
    slot[order] = np.concatenate([[0], np.cumsum(~extends)])
    return torch.as_tensor(order[ends], device=ids.device), torch.as_tensor(slot, device=ids.device)


class TokenFeaturesExtractor(BaseFeaturesExtractor):
    """``CotImage-v0`` Dict observation -> the transformer's hidden state at each row's ``step``.

    SB3 casts ``Box`` observations to float; ids are turned back with ``.round().long()``.
    Rows of an SB3 batch can be at different steps: one teacher-forced pass feeds the first
    ``max(step)`` slots, with undrawn slots (-1) replaced by token 0, and row ``i`` is read at
    position ``step[i]``. Causal attention keeps the replaced slots, which all lie at or after
    the row's own step, out of the hidden state that is read. Rows that are prefixes of another
    row of the batch (earlier steps of the same image) are read off that row's pass
    (:func:`shared_prefixes`).

    Args:
        observation_space: The env's Dict observation space.
        shapes_policy: The pretrained transformer (trained in place; shared with its generator).
    """

    def __init__(self, observation_space: spaces.Dict, shapes_policy: ShapesPolicy) -> None:
        super().__init__(observation_space, shapes_policy.cfg.d_model)
        self.shapes_policy = shapes_policy

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = observations["prompt"].round().long()
        tokens = observations["image_tokens"].round().long()
        steps = observations["step"].round().long().reshape(-1).clamp(0, tokens.shape[1] - 1)
        reps, slot = shared_prefixes(ids, tokens, steps)
        ids, fed = ids[reps], tokens[reps, : int(steps.max())].clamp(min=0)
        hidden = final_hidden(self.shapes_policy, PromptBatch(ids, ids != PAD, ("",) * len(ids)), fed)
        return hidden[slot.to(hidden.device), steps.to(hidden.device)]


class PretrainedTokenPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` whose actor is the pretrained transformer and its next-token head.

    Args:
        observation_space, action_space, lr_schedule: As SB3 passes them.
        shapes_policy: The pretrained :class:`~cotimage.generators.ShapesPolicy`; a
            zero-initialised value head is added to it if it has none.
        temperature: Divides the head's logits (the rollouts' sampling temperature).
        kwargs: Other ``ActorCriticPolicy`` arguments (optimizer, ...). ``net_arch``,
            ``ortho_init``, ``features_extractor_class``, ``features_extractor_kwargs`` and
            ``share_features_extractor`` are fixed by this class.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        shapes_policy: ShapesPolicy,
        temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(shapes_policy, ShapesPolicy):
            raise ValueError(f"shapes_policy must be a ShapesPolicy, got {type(shapes_policy).__name__}")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r} must be > 0")
        fixed = {
            "net_arch": [],
            "ortho_init": False,
            "features_extractor_class": TokenFeaturesExtractor,
            "features_extractor_kwargs": {"shapes_policy": shapes_policy},
            "share_features_extractor": True,
        }
        clashes = sorted(k for k in fixed if k in kwargs and kwargs[k] != fixed[k])
        if clashes:
            raise ValueError(f"PretrainedTokenPolicy fixes {clashes}; do not pass other values")
        super().__init__(observation_space, action_space, lr_schedule, **{**kwargs, **fixed})
        self.temperature = float(temperature)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # identity mlp_extractor; its fresh action/value nets are replaced next
        shapes = self.features_extractor.shapes_policy
        shapes.add_value_head()
        self.action_net = shapes.head
        self.value_net = shapes.value_head
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(action_logits=self.action_net(latent_pi) / self.temperature)
