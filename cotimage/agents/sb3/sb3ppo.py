"""stable-baselines3's PPO on ``CotImage-v0``, with the same ``learn / predict / save / load`` as our agents.

SB3 steps its own ``VecEnv`` one token at a time and re-reads each observation with a
teacher-forced pass (no KV cache), so rollouts are slower per image than the native agents'
cached ones. In updates, the rows of a minibatch that are steps of the same image share one
pass (see :func:`cotimage.agents.sb3.policy.shared_prefixes`). It is here as the reference
point RL users know.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, configure
from stable_baselines3.common.vec_env import VecEnv
from tqdm.auto import tqdm

from cotimage import generators
from cotimage.agents.common.agent import Agent, make_envs
from cotimage.agents.common.config import AgentConfig, require
from cotimage.agents.common.logger import next_run_dir, tensorboard_dir
from cotimage.agents.common.saving import (
    META_FILE,
    encode_meta,
    env_record,
    load_arguments,
    read_meta,
    saved_run_dir,
    staged_save,
    warn_if_env_changed,
)
from cotimage.agents.sb3.policy import PretrainedTokenPolicy
from cotimage.checks import require_count, require_seed
from cotimage.envs import CotImageEnv, CotImageVectorEnv
from cotimage.generators import Generator, Policy, ShapesPolicy

#: ``callback(agent, metrics)`` after every update; returning ``False`` stops ``learn`` (as native agents).
NativeCallback = Callable[["SB3PPO", dict[str, float]], "bool | None"]
MODEL_FILE = "sb3_ppo.zip"


@dataclass
class SB3PPOConfig(AgentConfig):
    """stable-baselines3's PPO (Schulman et al., 2017) over token steps of ``CotImage-v0``.

    ``batch_size`` (inherited) is the number of envs stepped together (SB3's ``n_envs``); a
    rollout is ``n_steps x batch_size`` env steps (tokens). Rollouts sample from the plain
    conditional distribution at ``temperature``: ``top_k`` and ``cfg_weight`` are not supported,
    and the loss uses the sampling distribution (``loss_distribution="sampling"``).

    Attributes:
        n_steps: Env steps per env per rollout (SB3's ``n_steps``). 64, the shapes generator's
            ``num_image_tokens``, makes every rollout whole images.
        n_epochs: Passes over each rollout.
        minibatch_size: Env steps per gradient step (SB3's ``batch_size``); in
            ``[2, n_steps * batch_size]``.
        gamma: Discount. 1: the score arrives at the image's last token and every token counts.
        gae_lambda: GAE's lambda (bias-variance trade-off of the advantages).
        clip_range: PPO's ratio clip epsilon.
        clip_range_vf: Clip of the value update around the old values (``None``: no clip).
        normalize_advantage: Normalise advantages per minibatch.
        ent_coef: Entropy bonus weight.
        vf_coef: Value-loss weight.
        target_kl: Stop an update's epochs once the approximate KL exceeds this (``None``: never).
    """

    learning_rate: float = 1e-5
    batch_size: int = 16
    n_steps: int = 64
    n_epochs: int = 4
    minibatch_size: int = 256
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_range_vf: float | None = None
    normalize_advantage: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    target_kl: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        rollout = self.n_steps * self.batch_size
        require(self.top_k is None, "top_k", self.top_k, "must be None: SB3's PPO samples the full categorical distribution")
        require(self.cfg_weight == 1.0, "cfg_weight", self.cfg_weight, "must be 1: SB3PPO has no classifier-free guidance")
        require(self.loss_distribution == "sampling", "loss_distribution", self.loss_distribution, "must be 'sampling': SB3's ratio uses the distribution the actions came from")
        require(self.n_steps >= 1, "n_steps", self.n_steps, "must be an int >= 1")
        require(self.n_epochs >= 1, "n_epochs", self.n_epochs, "must be an int >= 1")
        require(2 <= self.minibatch_size <= rollout, "minibatch_size", self.minibatch_size, f"must be an int in [2, n_steps * batch_size = {rollout}]")
        require(0 < self.gamma <= 1, "gamma", self.gamma, "must be in (0, 1]")
        require(0 <= self.gae_lambda <= 1, "gae_lambda", self.gae_lambda, "must be in [0, 1]")
        require(self.clip_range > 0, "clip_range", self.clip_range, "must be > 0")
        require(self.clip_range_vf is None or self.clip_range_vf > 0, "clip_range_vf", self.clip_range_vf, "must be None or > 0")
        require(self.ent_coef >= 0, "ent_coef", self.ent_coef, "must be >= 0")
        require(self.vf_coef >= 0, "vf_coef", self.vf_coef, "must be >= 0")
        require(self.target_kl is None or self.target_kl > 0, "target_kl", self.target_kl, "must be None or > 0")


class SB3PPO:
    """SB3's PPO with the pretrained shapes transformer as its policy, behind our agent surface.

    It mirrors :class:`~cotimage.agents.common.agent.Agent` (same constructor, ``learn``,
    ``predict``, ``save``, ``load``, ``num_images``, TensorBoard ``reward/mean`` at step
    ``num_images``) rather than subclassing it: the base class builds a gymnasium vector env,
    an optimizer and a per-update training loop, and SB3 brings its own ``VecEnv``, optimizer,
    loop and save format.

    Args:
        env: ``"CotImage-v0"`` (with ``env_kwargs``), a ``CotImage-v0`` env, or its vector env
            with ``num_envs == config.batch_size``. SB3 steps ``config.batch_size`` single
            ``CotImageEnv`` s in a ``DummyVecEnv`` (with ``Monitor``), all sharing the loaded
            generator and reward model.
        policy: A generator name, a generator or a ``ShapesPolicy`` (the shapes transformer
            only). Ignored when ``env`` is an env built with its own generator. It is trained
            in place, and gets a zero-initialised value head.
        config: :class:`SB3PPOConfig` (default one if ``None``).
        env_kwargs: Keyword arguments of the env when ``env`` is an id.
        tensorboard_log: Directory of TensorBoard runs (SB3's logger; ``None``: no logging).
            SB3's own tags use env steps as the x-axis; ``reward/*``, ``time/images_per_s``
            and ``eval/*`` use images, as the native agents.
        seed: Seeds SB3 (torch, numpy and the envs' prompt draws: env ``i`` gets ``seed + i``).

    Example:
        >>> agent = SB3PPO("CotImage-v0", config=SB3PPOConfig(batch_size=8))
        >>> agent.learn(total_images=64)
    """

    config_class: ClassVar[type[SB3PPOConfig]] = SB3PPOConfig

    def __init__(
        self,
        env: str | gym.Env | CotImageVectorEnv = "CotImage-v0",
        policy: str | Generator | Policy = "shapes",
        config: SB3PPOConfig | None = None,
        *,
        env_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        seed = require_seed("seed", seed)
        self.tensorboard_log = tensorboard_dir(tensorboard_log)
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise ValueError(f"config must be a {self.config_class.__name__}, got {type(self.config).__name__}")
        generator = generators.as_generator(policy) if isinstance(env, str) else None
        native_envs = make_envs(env, generator, self.config.batch_size, env_kwargs)
        self.env_record = env_record(env, policy, env_kwargs, native_envs)
        settings = native_envs.episodes.settings
        self.generator: Generator = settings["generator"]
        self.policy: Policy = self.generator.policy
        if not isinstance(self.policy, ShapesPolicy):
            raise ValueError(f"SB3PPO wraps the shapes transformer; the generator's policy is a {type(self.policy).__name__}")
        self.seed = seed
        self.run_dir: Path | None = None  # the TensorBoard run; a loaded agent continues its saved one
        #: SB3's vector env: ``batch_size`` single envs sharing the generator and reward model.
        self.envs: VecEnv = make_vec_env(CotImageEnv, n_envs=self.config.batch_size, seed=seed, env_kwargs=settings)
        cfg = self.config
        #: The underlying ``stable_baselines3.PPO``.
        self.model = PPO(
            PretrainedTokenPolicy,
            self.envs,
            learning_rate=cfg.learning_rate,
            n_steps=cfg.n_steps,
            batch_size=cfg.minibatch_size,
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            clip_range_vf=cfg.clip_range_vf,
            normalize_advantage=cfg.normalize_advantage,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            target_kl=cfg.target_kl,
            tensorboard_log=str(self.tensorboard_log) if self.tensorboard_log is not None else None,
            policy_kwargs={"shapes_policy": self.policy, "temperature": cfg.temperature},
            seed=seed,
            device=next(self.policy.parameters()).device,
        )
        if self.tensorboard_log is None:
            # SB3's default logger makes an empty tempdir/SB3-<time> folder on every learn() call.
            self.model.set_logger(Logger(folder=None, output_formats=[]))

    # -- counters ----------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        """Images (episodes' worth of env steps) trained on so far."""
        return self.model.num_timesteps // self.generator.num_image_tokens

    @property
    def num_updates(self) -> int:
        """PPO updates (rollout + ``n_epochs`` of gradient steps) so far."""
        return self.model.num_timesteps // (self.config.n_steps * self.config.batch_size)

    # -- learn / evaluate --------------------------------------------------------------------
    def learn(
        self,
        total_images: int,
        callback: NativeCallback | BaseCallback | list[BaseCallback] | None = None,
        progress_bar: bool = True,
        tb_log_name: str | None = None,
    ) -> SB3PPO:
        """Train on ``total_images`` more images: ``total_images * num_image_tokens`` SB3 timesteps.

        SB3 rounds up to whole rollouts. A second call continues (same counters and TensorBoard run).

        Args:
            total_images: Image budget of this call.
            callback: ``callback(agent, metrics)`` after each update (``False`` stops, as native
                agents; SB3 stops at the next env step), or SB3 callback(s), passed to SB3.
            progress_bar: Show a tqdm bar over images.
            tb_log_name: TensorBoard run name (default ``"SB3PPO"``).

        Returns:
            The agent.
        """
        require_count("total_images", total_images)
        sb3_callbacks = callback if isinstance(callback, list) else [callback]
        if callback is not None and not all(callable(c) or isinstance(c, BaseCallback) for c in sb3_callbacks):
            raise ValueError(f"callback={callback!r} must be None, a function callback(agent, metrics), "
                             "or SB3 callback(s)")
        if self.tensorboard_log is not None and self.run_dir is None:
            # The run is chosen once and kept, as the native agents do: left to SB3, a continued
            # learn() writes into the newest run of the directory, which may be another agent's.
            self.run_dir = next_run_dir(self.tensorboard_log, tb_log_name or type(self).__name__)
            self.model.set_logger(configure(str(self.run_dir), ["tensorboard"]))
        native = callback if callable(callback) and not isinstance(callback, BaseCallback) else None
        extra = [] if callback is None or native is not None else callback if isinstance(callback, list) else [callback]
        hooks = _ImageMetrics(self, total_images, progress_bar, native)
        self.model.learn(
            total_images * self.generator.num_image_tokens,
            callback=CallbackList([hooks, *extra]),
            log_interval=1,
            tb_log_name=tb_log_name or type(self).__name__,
            reset_num_timesteps=self.model.num_timesteps == 0,
            progress_bar=False,
        )
        return self

    def evaluate(self) -> dict[str, float]:
        """Periodic evaluation on ``config.eval_suite``: the native agents' code and tags."""
        metrics = Agent.evaluate(self)  # reads generator, config and seed, which this class shares
        self.model.policy.set_training_mode(False)
        return metrics

    # -- predict / save / load ---------------------------------------------------------------
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Next token(s) for one env observation or a batch (rows may be at different steps).

        SB3's ``predict``: returns ``(action, None)``; a single observation gives a 0-d array.
        Sampling uses torch's global RNG (seeded by SB3 with ``seed``).
        """
        action, _ = self.model.predict(observation, state, episode_start, deterministic)
        return action, None

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write SB3's zip (weights, optimizer) and ``agent.json`` (config, seed, counters) into ``path``.

        Raises:
            FileExistsError: if ``path`` holds a saved agent and ``overwrite`` is false, or
                holds other files (see :func:`~cotimage.agents.common.saving.check_save_directory`).
        """
        meta = encode_meta(
            self, num_timesteps=self.model.num_timesteps, sb3_n_updates=self.model._n_updates,
            tensorboard_run=self.run_dir.name if self.run_dir is not None else None,
        )
        with staged_save(path, overwrite) as staging:
            # policy_kwargs holds the transformer itself: its weights are in the zip's state dict already.
            self.model.save(staging / MODEL_FILE, exclude=["policy_kwargs"])
            (staging / META_FILE).write_text(meta)
        return Path(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: str | gym.Env | CotImageVectorEnv | None = None,
        policy: str | Generator | Policy | None = None,
        **kwargs: Any,
    ) -> SB3PPO:
        """Rebuild a saved agent: weights, optimizer state and counters.

        ``learn`` continues from there, with fresh episodes (the envs reset) and prompt draws
        from the seeded envs; it is not a bit-exact continuation of the saved run. With the
        saved ``tensorboard_log``, ``learn`` continues the saved TensorBoard run.

        Args:
            path: Directory written by :meth:`save`.
            env, policy, kwargs: As for :meth:`Agent.load <cotimage.agents.common.agent.Agent.load>`:
                ``None`` rebuilds the saved env and generator.
        """
        meta = read_meta(path, cls)
        path = Path(path)
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no {MODEL_FILE}: not a whole saved SB3PPO")
        env, policy, kwargs = load_arguments(meta, path, env, policy, kwargs)
        agent = cls(env, policy, cls.config_class.from_dict(meta["config"]), seed=meta["seed"], **kwargs)
        warn_if_env_changed(meta, agent.env_record, path)
        agent.model.set_parameters(str(path / MODEL_FILE), exact_match=True, device=agent.model.device)
        agent.model.num_timesteps = meta["num_timesteps"]
        agent.model._n_updates = meta["sb3_n_updates"]
        agent.run_dir = saved_run_dir(meta, agent.tensorboard_log)
        if agent.run_dir is not None:
            agent.model.set_logger(configure(str(agent.run_dir), ["tensorboard"]))
        return agent


class _ImageMetrics(BaseCallback):
    """Per-update metrics on the images axis, as the native agents log them, plus their callback.

    Collects ``info["score"]`` of every finished image; after each update writes ``reward/mean``,
    ``reward/std``, ``time/images_per_s`` (and ``eval/*`` every ``eval_every`` updates) to the
    run's TensorBoard writer at step ``num_images``, then calls the native callback.
    An update happened when a collected rollout is followed by the next rollout or the end.
    """

    def __init__(self, agent: SB3PPO, total_images: int, progress_bar: bool, callback: NativeCallback | None) -> None:
        super().__init__()
        self.agent, self.total_images, self.show_bar, self.native = agent, total_images, progress_bar, callback
        self.scores: list[float] = []
        self.pending = self.stop = False

    def _on_training_start(self) -> None:
        formats = self.model.logger.output_formats
        self.writer = next((f.writer for f in formats if isinstance(f, TensorBoardOutputFormat)), None)
        self.bar = tqdm(total=self.total_images, disable=not self.show_bar, unit="img", desc=type(self.agent).__name__)
        self.seen, self.clock = self.agent.num_images, time.perf_counter()

    def _on_step(self) -> bool:
        finished = [info["score"] for done, info in zip(self.locals["dones"], self.locals["infos"]) if done and "score" in info]
        self.scores += finished
        self.bar.update(len(finished))
        return not self.stop

    def _on_rollout_start(self) -> None:
        if self.pending:
            self._after_update()

    def _on_rollout_end(self) -> None:
        self.pending = True

    def _on_training_end(self) -> None:
        if self.pending:
            self._after_update()
        self.bar.close()
        if self.writer is not None:
            self.writer.flush()

    def _after_update(self) -> None:
        self.pending = False
        agent, metrics = self.agent, {}
        if self.scores:
            scores = torch.tensor(self.scores)
            metrics = {"reward/mean": float(scores.mean()), "reward/std": float(scores.std())}
            self.bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}")
            self.scores = []
        metrics["time/images_per_s"] = (agent.num_images - self.seen) / (time.perf_counter() - self.clock)
        if agent.config.eval_every and agent.num_updates % agent.config.eval_every == 0:
            metrics.update(agent.evaluate())
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, agent.num_images)
        if self.native is not None:
            train = {k: float(v) for k, v in self.model.logger.name_to_value.items() if k.startswith("train/")}
            if self.native(agent, {**train, **metrics}) is False:
                self.stop = True
        self.seen, self.clock = agent.num_images, time.perf_counter()  # evaluation time not counted
