"""A natively batched vector ``CotImage-v0``: every sub-env steps as one batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cotimage.checks import require_count, require_seed
from cotimage.envs.core import EpisodeBatch, text_of
from cotimage.generators import Generator
from cotimage.rewards import RewardModel


class CotImageVectorEnv(VectorEnv):
    """``num_envs`` image episodes stepped together: one batched decode and reward call at the end.

    Spaces, rewards and infos are those of :class:`~cotimage.envs.CotImageEnv`, batched.
    All sub-envs are always at the same step (every episode has ``num_image_tokens`` steps).

    Autoreset is ``SAME_STEP`` (``metadata["autoreset_mode"]``): the step that completes the
    images returns the first observation of new episodes, with the completed ones in
    ``info["final_obs"]`` and ``info["final_info"]``, and the new episodes' ``prompt`` and
    ``category`` beside them; the new prompts are drawn from the suite with the last reset's
    ``group_size`` (prompts given to ``reset`` are not reused).

    Reset options:
        ``{"prompts": [...]}`` (texts, records or suite indices) or ``{"indices": [...]}`` (suite indices),
        ``{"group_size": G}``: G consecutive sub-envs share a prompt (GRPO's groups); with
        ``prompts``, pass ``num_envs / G`` of them. Without prompts they are drawn from the suite.

    Args:
        num_envs: Number of sub-envs.
        Others: as :class:`~cotimage.envs.CotImageEnv`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int,
        generator: str | Generator = "shapes",
        reward: str | RewardModel | Callable = "scene",
        suite: str | list = "shapes/compbench-train",
        render_mode: str | None = None,
        process_reward_every: int | None = None,
        process_reward_coef: float = 1.0,
    ) -> None:
        num_envs = require_count("num_envs", num_envs)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is not allowed; choose None or 'rgb_array'")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.episodes = EpisodeBatch(num_envs, generator, reward, suite, process_reward_every, process_reward_coef)
        self.single_action_space = spaces.Discrete(self.episodes.generator.codebook_size)
        self.single_observation_space = self.episodes.observation_space()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._group_size = 1

    @property
    def generator(self) -> Generator:
        return self.episodes.generator

    @property
    def prompts(self) -> list:
        """The prompt (record or text) of each sub-env's current episode."""
        return list(self.episodes.prompts)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, list):
            raise ValueError("seed must be an int or None: the sub-envs share one RNG, seeded once")
        super().reset(seed=seed if seed is None else require_seed("seed", seed))
        self.episodes.start(self.episodes.resolve(options, self.np_random))
        self._group_size = (options or {}).get("group_size", 1)  # once resolve() has checked it
        return self.episodes.observation(), self._prompt_info()

    def _prompt_info(self) -> dict[str, np.ndarray]:
        prompts = self.episodes.prompts
        info = {
            "prompt": np.array([text_of(p) for p in prompts], dtype=object),
            "category": np.array([getattr(p, "category", None) for p in prompts], dtype=object),
        }
        return {**info, **{f"_{k}": np.ones(self.num_envs, bool) for k in info}}

    def step(self, actions: Any):
        rewards, done, infos = self.episodes.act(actions)
        terminated = np.full(self.num_envs, done)
        truncated = np.zeros(self.num_envs, bool)
        if not done:
            return self.episodes.observation(), rewards, terminated, truncated, {}
        final_obs = self.episodes.observation()
        vector_info: dict[str, Any] = {}
        for i, info in enumerate(infos):
            obs_i = {k: v[i] for k, v in final_obs.items()}
            vector_info = self._add_info(vector_info, {"final_obs": obs_i, "final_info": info}, i)
        self.episodes.start(self.episodes.sample_prompts(self.np_random, self._group_size))
        # As SyncVectorEnv does: the new episodes' reset info joins the step's info.
        vector_info.update(self._prompt_info())
        return self.episodes.observation(), rewards, terminated, truncated, vector_info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode == "rgb_array":
            return tuple(self.episodes.partial_images())
        return None
