"""The surface every agent shares, as in stable-baselines3: ``learn / predict / save / load``."""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from cotimage import generators
from cotimage.agents.common.config import AgentConfig
from cotimage.agents.common.logger import next_run_dir, tensorboard_dir
from cotimage.agents.common.rollout import Rollout, collect
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
from cotimage.checks import require_count, require_seed
from cotimage.envs import CotImageEnv, CotImageVectorEnv
from cotimage.evaluation import evaluate, image_grid
from cotimage.generators import Generator, Policy, PromptBatch

#: ``callback(agent, metrics)`` after every update; returning ``False`` stops ``learn``.
Callback = Callable[["Agent", dict[str, float]], "bool | None"]


def make_envs(
    env: str | gym.Env | CotImageVectorEnv, generator: Generator, num_envs: int, env_kwargs: dict | None
) -> CotImageVectorEnv:
    """The native vector env an agent collects with, from an env id, an env or a vector env."""
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise ValueError(f"env_kwargs={env_kwargs!r} must be None or a dict of CotImage-v0 arguments")
    if isinstance(env, str):
        try:
            entry_point = str(gym.spec(env).entry_point)
        except gym.error.Error as error:  # an unknown id
            raise ValueError(f"env={env!r}: {error}") from error
        if not entry_point.startswith("cotimage."):
            raise ValueError(f"env={env!r} is not a cotimage environment; agents train on 'CotImage-v0'")
        if "generator" in (env_kwargs or {}):
            raise ValueError("env_kwargs must not hold 'generator': pass the generator as the agent's policy= argument")
        known = set(inspect.signature(CotImageVectorEnv).parameters) - {"num_envs", "generator"}
        if set(env_kwargs or {}) - known:
            raise ValueError(f"env_kwargs {sorted(set(env_kwargs) - known)} are no CotImage-v0 arguments; "
                             f"they are {sorted(known)}")
        kwargs = {**(env_kwargs or {}), "generator": generator}
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    if env_kwargs:
        raise ValueError("env_kwargs only apply when env is an id; configure the env you pass instead")
    if isinstance(env, CotImageVectorEnv):
        if env.num_envs != num_envs:
            raise ValueError(f"the vector env has num_envs={env.num_envs}, but config.batch_size={num_envs}")
        return env
    if isinstance(getattr(env, "unwrapped", None), CotImageEnv):
        _refuse_wrappers(env)
        return CotImageVectorEnv(num_envs, **env.unwrapped.episodes.settings)
    raise ValueError(f"env must be an env id, a CotImageEnv or a CotImageVectorEnv, got {type(env).__name__}")


#: The wrappers ``gym.make`` adds, which change nothing an agent relies on.
_MAKE_WRAPPERS = (gym.wrappers.OrderEnforcing, gym.wrappers.PassiveEnvChecker)


def _refuse_wrappers(env: gym.Env) -> None:
    """Agents collect through a vector env rebuilt from the env's settings, so other wrappers would be lost."""
    layer = env
    while isinstance(layer, gym.Wrapper):
        if not isinstance(layer, _MAKE_WRAPPERS):
            raise ValueError(
                f"env is wrapped in {type(layer).__name__}, which the agent's vector env would drop; "
                "pass the env unwrapped, or change what the wrapper changes in the env's arguments (e.g. reward=)"
            )
        layer = layer.env


class Agent(ABC):
    """Base of every agent: builds env, policy, optimizer and logger, and runs the training loop.

    Args:
        env: ``"CotImage-v0"`` (with ``env_kwargs``), a ``CotImage-v0`` env, or its vector env
            with ``num_envs == config.batch_size``. Experience is always collected through it.
        policy: A generator name, a :class:`~cotimage.generators.Generator`, or a policy.
            Ignored when ``env`` is an env built with its own generator.
        config: The algorithm's config dataclass; defaults to ``config_class()``.
        env_kwargs: Keyword arguments of ``gym.make_vec`` when ``env`` is an id.
        tensorboard_log: Directory for TensorBoard runs (``None``: no logging).
        seed: Seeds the env's prompt draws and the token sampler.
    """

    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    needs_value_head: ClassVar[bool] = False

    def __init__(
        self,
        env: str | gym.Env | CotImageVectorEnv = "CotImage-v0",
        policy: str | Generator | Policy = "shapes",
        config: AgentConfig | None = None,
        *,
        env_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        require_seed("seed", seed)
        self.tensorboard_log = tensorboard_dir(tensorboard_log)
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise ValueError(f"config must be a {self.config_class.__name__}, got {type(self.config).__name__}")
        generator = policy if isinstance(env, str) else None
        generator = generators.as_generator(generator) if generator is not None else None
        self.envs = make_envs(env, generator, self.config.batch_size, env_kwargs)
        self.env_record = env_record(env, policy, env_kwargs, self.envs)
        self.generator = self.envs.generator
        self.policy: Policy = self.generator.policy
        if self.needs_value_head:
            self.policy.add_value_head()
        self.policy.train()
        self.reference: Policy | None = self.policy.frozen_reference() if self.uses_reference else None
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.learning_rate)
        self.seed = int(seed)
        self.sampler = torch.Generator(self.policy.device).manual_seed(self.seed)
        self.num_images = self.num_updates = 0
        self._rollout_seconds = 0.0  # time in collect() during the current update
        self.writer = None
        self.run_dir: Path | None = None  # the TensorBoard run; a loaded agent continues its saved one

    # -- what each algorithm provides -----------------------------------------------------------
    @property
    def uses_reference(self) -> bool:
        """Whether the algorithm needs a frozen reference policy (e.g. a KL term)."""
        return False

    @abstractmethod
    def train_step(self) -> dict[str, float]:
        """Collect a batch through the env, update the policy, return metrics to log."""

    # -- shared machinery ----------------------------------------------------------------------
    def collect(self, options: dict[str, Any] | None = None) -> Rollout:
        """One batch of images from the current policy, through the env."""
        self.policy.eval()
        start = time.perf_counter()
        rollout = collect(
            self.envs,
            self.policy,
            self.config.sampling,
            self.sampler,
            options,
            seed=self.seed if self.num_images == 0 else None,
        )
        self.policy.train()
        self._rollout_seconds += time.perf_counter() - start
        self.num_images += len(rollout)
        return rollout

    def optimize(self, loss: torch.Tensor) -> float:
        """One gradient step with clipping; returns the gradient norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return float(norm)

    def reward_metrics(self, rollout: Rollout) -> dict[str, float]:
        return {"reward/mean": float(rollout.scores.mean()), "reward/std": float(rollout.scores.std())}

    def learn(self, total_images: int, callback: Callback | None = None, progress_bar: bool = True, tb_log_name: str | None = None):
        """Train on ``total_images`` more generated images (rounded up to whole updates).

        Args:
            total_images: Image budget of this call; ``learn`` may be called again to continue.
            callback: ``callback(agent, metrics)`` after each update; ``False`` stops training.
            progress_bar: Show a tqdm bar over images.
            tb_log_name: TensorBoard run name (default: the agent's class name).

        Returns:
            The agent.
        """
        require_count("total_images", total_images)
        if callback is not None and not callable(callback):  # before an update, not after it
            raise ValueError(f"callback={callback!r} must be None or a function callback(agent, metrics)")
        self._open_writer(tb_log_name or type(self).__name__)
        target = self.num_images + total_images
        with tqdm(total=total_images, disable=not progress_bar, unit="img", desc=type(self).__name__) as bar:
            while self.num_images < target:
                seen, start, self._rollout_seconds = self.num_images, time.perf_counter(), 0.0
                metrics = self.train_step()
                self.num_updates += 1
                elapsed = time.perf_counter() - start
                metrics["time/images_per_s"] = (self.num_images - seen) / elapsed
                # Where an update's time goes: generating through the env, or the losses and steps.
                metrics["time/rollout_fraction"] = self._rollout_seconds / elapsed
                metrics["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
                if self.config.eval_every and self.num_updates % self.config.eval_every == 0:
                    metrics.update(self.evaluate())
                self._log(metrics)
                bar.update(self.num_images - seen)
                bar.set_postfix(reward=f"{metrics.get('reward/mean', float('nan')):.3f}")
                if callback is not None and callback(self, metrics) is False:
                    break
        if self.writer is not None:
            self.writer.flush()
        return self

    def evaluate(self) -> dict[str, float]:
        """Periodic evaluation on ``config.eval_suite`` (a fixed seed, so curves compare)."""
        result = evaluate(
            self.generator,
            self.config.eval_suite,
            images_per_prompt=self.config.eval_images_per_prompt,
            seed=self.seed,
            sampling=self.config.sampling,
            max_prompts=self.config.eval_prompts,
            progress=False,
        )
        self.policy.train()
        prefix = f"eval/{self.config.eval_suite}"
        return {f"{prefix}/overall": result.overall.mean, **{f"{prefix}/{k}": v.mean for k, v in result.categories.items()}}

    def _open_writer(self, name: str) -> None:
        if self.tensorboard_log is None or self.writer is not None:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard_log.mkdir(parents=True, exist_ok=True)
        self.run_dir = self.run_dir or next_run_dir(self.tensorboard_log, name)
        self.writer = SummaryWriter(str(self.run_dir))

    def _log(self, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.num_images)
        if self.config.eval_every and self.num_updates % self.config.eval_every == 0 and hasattr(self, "_last_images"):
            grid = image_grid(self._last_images[:16], columns=8, scale=4)
            self.writer.add_image("samples", grid, self.num_images, dataformats="HWC")

    # -- predict / save / load ---------------------------------------------------------------
    @torch.no_grad()
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Next token(s) for one env observation or a batch (rows may be at different steps).

        SB3's ``predict`` signature (``state`` and ``episode_start`` are unused: the policy has
        no recurrent state), so SB3's ``evaluate_policy`` works. Sampling draws from torch's
        global RNG, as SB3's does, not from the training sampler: calling ``predict`` between
        updates leaves the training run unchanged. Recomputes each prefix: fine for acting in
        an env, while training rolls out with one cached step per token.
        """
        rows, single = self._observation_rows(observation)
        device = self.policy.device
        ids = torch.as_tensor(rows["prompt"], dtype=torch.long, device=device)
        tokens = torch.as_tensor(rows["image_tokens"], device=device)
        steps = rows["step"].reshape(len(ids))
        log_probs = torch.empty(len(ids), self.generator.codebook_size, device=device)
        self.policy.eval()
        for step in np.unique(steps):  # one pass per prefix length
            rows = torch.as_tensor(np.flatnonzero(steps == step), device=device)
            batch = PromptBatch(ids[rows], ids[rows] != self.generator.pad_token_id, ("",) * len(rows))
            log_probs[rows] = self.policy.next_log_probs(batch, tokens[rows, : int(step)], self.config.sampling)
        self.policy.train()
        action = log_probs.argmax(-1) if deterministic else torch.multinomial(log_probs.exp(), 1).squeeze(1)
        action = action.cpu().numpy()
        return (action[0] if single else action), None

    def _observation_rows(self, observation: Any) -> tuple[dict[str, np.ndarray], bool]:
        """The observation as rows of the env's observation space, and whether it was one env's.

        Raises:
            ValueError: naming the key whose shape, type or values the env's space does not hold.
        """
        space = self.envs.single_observation_space
        if not isinstance(observation, Mapping) or set(observation) != set(space.spaces):
            raise ValueError(f"observation must be the env's dict with keys {sorted(space.spaces)}, got {observation!r:.80}")
        if np.ndim(observation["prompt"]) not in (1, 2):
            raise ValueError(f"observation['prompt'] must be one env's (shape {space['prompt'].shape}) or a batch's "
                             f"(n, {space['prompt'].shape[0]}), got shape {np.shape(observation['prompt'])}")
        single = np.ndim(observation["prompt"]) == 1
        rows = {}
        for key, box in space.spaces.items():
            value = np.asarray(observation[key])
            value = value[None] if single else value
            n = len(value) if value.ndim else 0
            if not np.issubdtype(value.dtype, np.integer) or value.size != n * int(np.prod(box.shape)) or n == 0:
                raise ValueError(f"observation[{key!r}] must hold integer rows of shape {box.shape}, got {value.dtype} {value.shape}")
            value = value.reshape(n, *box.shape)
            if not ((value >= box.low) & (value <= box.high)).all():
                raise ValueError(f"observation[{key!r}] must lie in [{box.low.min()}, {box.high.max()}], "
                                 f"got [{value.min()}, {value.max()}]")
            rows[key] = value
        if len({len(v) for v in rows.values()}) > 1:
            raise ValueError(f"observation's keys hold different numbers of rows: { {k: len(v) for k, v in rows.items()} }")
        return rows, single

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write weights (safetensors), config, counters and env (JSON), optimizer and RNG state.

        Raises:
            FileExistsError: if ``path`` holds a saved agent and ``overwrite`` is false, or
                holds other files (see :func:`~cotimage.agents.common.saving.check_save_directory`).
        """
        meta = encode_meta(
            self,
            device=self.policy.device.type,  # the sampler RNG's state is this device's kind
            tensorboard_run=self.run_dir.name if self.run_dir is not None else None,
        )
        with staged_save(path, overwrite) as staging:
            save_file({k: v.detach().contiguous() for k, v in self.policy.state_dict().items()},
                      str(staging / "policy.safetensors"),
                      metadata=self.policy.weights_metadata())  # so cotimage eval --weights reads the file alone
            torch.save(
                {"optimizer": self.optimizer.state_dict(), "sampler": self.sampler.get_state(),
                 "env_rng": self.envs.np_random.bit_generator.state},
                staging / "state.pt",
            )
            (staging / META_FILE).write_text(meta)
        return Path(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: str | gym.Env | CotImageVectorEnv | None = None,
        policy: str | Generator | Policy | None = None,
        **kwargs: Any,
    ):
        """Rebuild a saved agent; ``learn`` then continues exactly where it stopped.

        Args:
            path: Directory written by :meth:`save`.
            env: ``None``: the env the agent was trained on, rebuilt from its id and
                ``env_kwargs`` (an env built from objects must be passed again); or an env as for
                the constructor (a warning names any setting that differs from the saved env's).
            policy: ``None``: the saved generator name; or as for the constructor. Either way
                the saved weights replace the policy's.
            kwargs: As for the constructor, but for ``config`` and ``seed``, which are the saved
                ones. ``tensorboard_log`` defaults to the saved one,
                and then ``learn`` continues the saved TensorBoard run.
        """
        meta = read_meta(path, cls)  # checks path too
        path = Path(path)
        env, policy, kwargs = load_arguments(meta, path, env, policy, kwargs)
        agent = cls(env, policy, cls.config_class.from_dict(meta["config"]), seed=meta["seed"], **kwargs)
        warn_if_env_changed(meta, agent.env_record, path)
        agent.run_dir = saved_run_dir(meta, agent.tensorboard_log)
        saved_device, device = meta.get("device", "cpu"), agent.policy.device.type
        if device != saved_device:
            raise ValueError(
                f"{path} was saved with its policy on {saved_device!r}, and its sampler state only resumes there; "
                f"pass a policy on {saved_device!r} (e.g. generators.load(name, device={saved_device!r})), not {device!r}"
            )
        agent.policy.load_state_dict(load_file(str(path / "policy.safetensors")))
        state = torch.load(path / "state.pt", weights_only=True)
        agent.optimizer.load_state_dict(state["optimizer"])
        agent.sampler.set_state(state["sampler"])
        agent.envs.np_random.bit_generator.state = state["env_rng"]
        agent.num_images, agent.num_updates = meta["num_images"], meta["num_updates"]
        return agent
