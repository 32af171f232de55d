"""Saved agents: ``agent.json`` (algorithm, config, counters, env) beside each agent's own files.

Shared by the native agents and :class:`~cotimage.agents.SB3PPO`. Saving never replaces
what a user saved elsewhere, and loading rebuilds the env the agent was trained on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cotimage.checks import checked_path, save_directory
from cotimage.envs import CotImageVectorEnv
from cotimage.generators import ShapesGenerator
from cotimage.generators.shapes import ASSET as SHAPES_ASSET

META_FILE = "agent.json"


def env_record(env: Any, policy: Any, env_kwargs: dict | None, envs: CotImageVectorEnv) -> dict[str, Any]:
    """What :func:`load_arguments` rebuilds the env from, and what a loaded agent's env is checked against.

    ``rebuild`` is kept only when the env was given as an id with JSON-able ``env_kwargs``
    (reward and suite as names): objects cannot be rebuilt from a file.
    """
    generator = envs.generator
    # Only the shipped shapes weights can be rebuilt by name: a run from other weights must be
    # given its generator again, or a loaded agent's KL reference would be the shipped model.
    shipped = isinstance(generator, ShapesGenerator) and generator.weights_file == SHAPES_ASSET.resolve()
    name = policy if isinstance(policy, str) else "shapes" if shipped else None
    record: dict[str, Any] = {"description": describe(envs), "policy": name}
    if isinstance(env, str) and _json_able(env_kwargs or {}):
        record["rebuild"] = {"env": env, "env_kwargs": env_kwargs or {}}
    return record


def describe(envs: CotImageVectorEnv) -> dict[str, Any]:
    """The env's settings by name: reward spec, suite, process-reward settings, generator class."""
    settings = envs.episodes.settings
    return {
        "reward": settings["reward"].name,
        "suite": settings["suite"] if isinstance(settings["suite"], str) else "custom",
        "process_reward_every": settings["process_reward_every"],
        "process_reward_coef": settings["process_reward_coef"],
        "generator": type(settings["generator"]).__name__,
    }


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


@contextmanager
def staged_save(path: str | Path, overwrite: bool) -> Iterator[Path]:
    """A new directory beside ``path`` to write a save into; once the block ends, it becomes ``path``.

    ``path`` is checked first (:func:`check_save_directory`). A save that fails or is
    interrupted leaves ``path`` as it was, a previous save whole, rather than a mix of the two.
    """
    path = check_save_directory(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.saving-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replaced = staging.with_name(staging.name.replace(".saving-", ".replaced-"))
    if path.exists():  # an empty directory, or the save being replaced
        path.rename(replaced)
    staging.rename(path)
    shutil.rmtree(replaced, ignore_errors=True)


def check_save_directory(path: str | Path, overwrite: bool) -> Path:
    """``path``, once checked that saving an agent there replaces nothing a user keeps.

    Raises:
        FileExistsError: if ``path`` holds a saved agent and ``overwrite`` is false, or holds
            other files (never replaced, whatever ``overwrite``), or it or a directory above it is a file.
    """
    path = save_directory(path, overwrite, "a saved agent")
    if (path / META_FILE).exists():
        if not overwrite:
            raise FileExistsError(f"{path} already holds a saved agent; pass overwrite=True to replace it")
    elif path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path} holds files that are not a saved agent; save into a new or empty directory")
    return path


def encode_meta(agent: Any, **extra: Any) -> str:
    """``agent.json``'s text: what every agent saves (algorithm, config, seed, counters, env, logs), and ``extra``.

    Savers encode it before writing any file, so a value JSON cannot hold fails with nothing
    written, and write it last, so a directory without it is no saved agent.
    """
    meta = {
        "algorithm": type(agent).__name__,
        "config": agent.config.to_dict(),
        "seed": agent.seed,
        "num_images": agent.num_images,
        "num_updates": agent.num_updates,
        "env": agent.env_record,
        "tensorboard_log": str(agent.tensorboard_log) if agent.tensorboard_log is not None else None,
        **extra,
        "cotimage_version": __import__("cotimage").__version__,
    }
    return json.dumps(meta, indent=2)


def saved_run_dir(meta: dict[str, Any], tensorboard_log: Path | None) -> Path | None:
    """The TensorBoard run a loaded agent continues: the saved one, when it logs to the saved directory."""
    if meta.get("tensorboard_run") and tensorboard_log is not None and tensorboard_log == Path(meta["tensorboard_log"]):
        return tensorboard_log / meta["tensorboard_run"]
    return None


def read_meta(path: str | Path, cls: type) -> dict[str, Any]:
    """The ``agent.json`` in ``path``, checked to hold a ``cls`` agent."""
    path = checked_path("path", path)
    if not (path / META_FILE).is_file():
        raise FileNotFoundError(f"no saved agent at {path} (expected {path / META_FILE})")
    try:
        meta = json.loads((path / META_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path / META_FILE} is not a saved agent's record: {error}") from error
    missing = [key for key in ("algorithm", "config", "seed", "num_images", "num_updates")
               if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise ValueError(f"{path / META_FILE} is not a saved agent's record: it lacks {missing}")
    if meta["algorithm"] != cls.__name__:
        raise ValueError(f"{path} holds a {meta['algorithm']} agent; load it with that class, not {cls.__name__}")
    return meta


def load_arguments(meta: dict[str, Any], path: Path, env: Any, policy: Any, kwargs: dict[str, Any]) -> tuple[Any, Any, dict]:
    """The constructor's ``env``, ``policy`` and keyword arguments for loading a saved agent.

    ``None`` for ``env`` or ``policy`` means the saved one; ``tensorboard_log`` defaults to the
    saved directory too. Agents saved before the env was recorded load on the default env.
    """
    fixed = sorted({"config", "seed"} & set(kwargs))
    if fixed:
        raise ValueError(f"load() takes no {fixed}: a loaded agent keeps its saved config and seed, so that learn() "
                         "continues the saved run; build a new agent for others")
    record = meta.get("env", {"rebuild": {"env": "CotImage-v0", "env_kwargs": {}}, "policy": "shapes"})
    if env is None:
        if "rebuild" not in record:
            raise ValueError(
                f"{path} was trained on an env built from objects ({record['description']}); "
                "pass that env to load(env=...)"
            )
        env = record["rebuild"]["env"]
        if "env_kwargs" not in kwargs:
            kwargs = {**kwargs, "env_kwargs": record["rebuild"]["env_kwargs"]}
    if policy is None:
        if record.get("policy") is None:
            raise ValueError(f"{path} was trained with a generator given as an object; pass it to load(policy=...)")
        policy = record["policy"]
    if "tensorboard_log" not in kwargs and meta.get("tensorboard_log") is not None:
        kwargs = {**kwargs, "tensorboard_log": meta["tensorboard_log"]}
    return env, policy, kwargs


def warn_if_env_changed(meta: dict[str, Any], record: dict[str, Any], path: Path) -> None:
    """Warn (not fail: continuing on another env can be meant) when a loaded agent's env differs."""
    saved, now = meta.get("env", {}).get("description"), record["description"]
    changed = {k: (saved[k], now[k]) for k in saved if saved[k] != now.get(k)} if saved else {}
    if changed:
        listed = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
        warnings.warn(f"{path} was trained on another env: {listed}", UserWarning, stacklevel=3)
