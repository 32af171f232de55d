"""``CotImage-v0``: one episode is one image, drawn one VQ token per step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cotimage.checks import require_seed
from cotimage.envs.core import NOT_DRAWN, EpisodeBatch, text_of
from cotimage.generators import Generator
from cotimage.rewards import RewardModel

ObsType = dict[str, np.ndarray]


class CotImageEnv(gym.Env[ObsType, np.int64]):
    """Token-by-token autoregressive image generation as an MDP.

    At each step the agent chooses the next image token (row-major over the VQ grid).
    When the grid is full the tokens are decoded to pixels and the reward model scores the
    image against the prompt; all earlier rewards are 0 unless process rewards are on.

    Action space:
        ``Discrete(codebook_size)``: the next image token.

    Observation space (integer ``Box``es, which stable-baselines3 passes through as they are):
        ``"prompt"``: the prompt's token ids, padded (``(max_prompt_tokens + 1,)``).
        ``"image_tokens"``: tokens drawn so far; undrawn slots hold :data:`NOT_DRAWN` (-1).
        ``"step"``: how many tokens are drawn, shape ``(1,)``.

    Reset options:
        ``{"prompt": text_or_record}``: draw this prompt; ``{"index": i}``: the suite's i-th
        prompt. Otherwise a prompt is drawn from the suite with the env's RNG.

    Info at the last step: ``image`` (uint8 H x W x 3), ``prompt``, ``category``
    (``"custom"`` for a custom prompt the shapes grammar parses, ``None`` for one it does not),
    ``score`` (the reward model's score) and ``reward_details``
    (per-criterion outcomes for the scene rewards).

    Args:
        generator: Generator name (``"shapes"``, ``"janus-pro"``) or instance.
        reward: Reward name (see :func:`cotimage.rewards.names`), model, or callable
            ``f(images, prompts) -> scores``.
        suite: Prompt suite that ``reset`` samples from: a name, or a list of prompts.
        render_mode: ``None`` or ``"rgb_array"`` (the image decoded so far).
        process_reward_every: Score the partly decoded image every this many token rows and
            add potential-based shaping ``coef * (phi(s') - phi(s))``, with ``phi = 0`` at the
            end: the undiscounted return is the terminal score minus ``coef * phi(s_0)``, a
            constant of the prompt, so the optimal policy is unchanged for gamma = 1 (the agents'
            default here; with gamma < 1 the shaping would need ``gamma * phi(s')``).
            ``None`` disables it.
        process_reward_coef: ``coef`` above.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        generator: str | Generator = "shapes",
        reward: str | RewardModel | Callable = "scene",
        suite: str | list = "shapes/compbench-train",
        render_mode: str | None = None,
        process_reward_every: int | None = None,
        process_reward_coef: float = 1.0,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is not allowed; choose None or 'rgb_array'")
        self.render_mode = render_mode
        self.episodes = EpisodeBatch(1, generator, reward, suite, process_reward_every, process_reward_coef)
        self.action_space = spaces.Discrete(self.episodes.generator.codebook_size)
        self.observation_space = self.episodes.observation_space()

    @property
    def generator(self) -> Generator:
        return self.episodes.generator

    def _obs(self) -> ObsType:
        return {k: v[0] for k, v in self.episodes.observation().items()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict]:
        super().reset(seed=seed if seed is None else require_seed("seed", seed))
        prompts = self.episodes.resolve(options, self.np_random)
        self.episodes.start(prompts)
        prompt = prompts[0]
        return self._obs(), {"prompt": text_of(prompt), "category": getattr(prompt, "category", None)}

    def step(self, action: Any) -> tuple[ObsType, float, bool, bool, dict]:
        action = np.asarray(action)
        if action.shape not in ((), (1,)):
            raise ValueError(f"action must be one token id, got an array of shape {action.shape}")
        rewards, terminated, infos = self.episodes.act(action.reshape(1))
        return self._obs(), float(rewards[0]), terminated, False, infos[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.episodes.partial_images()[0]
        return None


__all__ = ["NOT_DRAWN", "CotImageEnv"]
