"""Evaluate a generator or policy on a prompt suite: per-category scores with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cotimage import rewards, suites
from cotimage.checks import blocking_file, require_count, require_seed
from cotimage.generators import Generator, Policy, SamplingConfig, as_generator
from cotimage.stats import Interval, stratified_bootstrap


@dataclass
class EvalResult:
    """Scores of one evaluation.

    Attributes:
        suite: Suite name.
        reward: Reward name.
        overall: Mean of the per-category means (GenEval's overall), with its interval.
        categories: Per-category mean and interval.
        scores: (prompts, images_per_prompt) per-image scores, in suite order.
    """

    suite: str
    reward: str
    overall: Interval
    categories: dict[str, Interval]
    scores: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-image scores)."""
        return {
            "suite": self.suite,
            "reward": self.reward,
            "overall": asdict(self.overall),
            "categories": {k: asdict(v) for k, v in self.categories.items()},
        }

    def table(self) -> str:
        """A markdown table: one row per category, then overall."""
        rows = [f"| {k} | {v} |" for k, v in self.categories.items()]
        head = f"| {self.suite} ({self.reward}) | mean [95% CI] |\n|---|---|"
        return "\n".join([head, *rows, f"| **overall** | {self.overall} |"])


def _mean_of_means(groups: list[np.ndarray]) -> float:
    return float(np.mean([g.mean() for g in groups]))


def image_grid(images: np.ndarray, columns: int, scale: int = 1) -> np.ndarray:
    """Tile uint8 images (N, H, W, 3) into one (rows*H, columns*W, 3) image, upscaled by ``scale``."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = image
    return grid.repeat(scale, 0).repeat(scale, 1)


def check_grid_path(path: str | Path, overwrite: bool) -> Path:
    """``path`` as a Path, once checked (before any sampling) that an image grid may be written there."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"grid_path={str(path)!r} must name an image file PIL writes, e.g. grid.png")
    blocker = blocking_file(path.parent)
    if path.is_dir() or blocker is not None:
        raise ValueError(f"grid_path={str(path)!r} cannot be written: {path if path.is_dir() else blocker} is "
                         f"{'a directory' if path.is_dir() else 'a file'}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"grid_path={str(path)!r} exists; pass overwrite=True to replace it")
    return path


@torch.no_grad()
def evaluate(
    policy_or_generator: Generator | Policy | str,
    suite: str,
    images_per_prompt: int = 4,
    seed: int = 0,
    reward: str | rewards.RewardModel | Callable = "scene",
    sampling: SamplingConfig | None = None,
    max_prompts: int | None = None,
    batch_size: int = 256,
    grid_path: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> EvalResult:
    """Sample ``images_per_prompt`` images per suite prompt and score them.

    Args:
        policy_or_generator: A generator, a generator name, a shapes policy, or an agent (its
            generator, as trained so far).
        suite: Suite name (see :data:`cotimage.suites.NAMES`).
        images_per_prompt: Images sampled per prompt (GenEval uses 4).
        seed: Seeds sampling and the bootstrap: the same seed (and ``batch_size``) gives the same result.
        reward: Reward name, model or callable.
        sampling: Sampling configuration; default: the generator's own.
        max_prompts: Evaluate on the first ``max_prompts`` prompts of each category only.
        batch_size: Images sampled per batch. One seeded sampler runs through the batches, so
            another batch size draws other samples (scores differ within their noise).
        grid_path: Write a grid of the first 16 prompts' samples to this image file (e.g. ``.png``).
        progress: Show a progress bar.
        overwrite: Replace a file already at ``grid_path``.

    Raises:
        ValueError: if ``images_per_prompt``, ``batch_size`` or ``max_prompts`` (unless ``None``)
            is not an int >= 1, ``seed`` not an int >= 0, ``sampling`` not a ``SamplingConfig``,
            ``grid_path`` no image file that can be written there, or for an unknown suite or reward.
        FileExistsError: if a file is at ``grid_path`` and ``overwrite`` is false.
    """
    require_count("images_per_prompt", images_per_prompt)
    require_count("batch_size", batch_size)
    require_count("max_prompts", max_prompts, none_means="every prompt")
    require_seed("seed", seed)
    if sampling is not None and not isinstance(sampling, SamplingConfig):
        raise ValueError(f"sampling={sampling!r} must be None (the generator's own) or a SamplingConfig")
    grid_path = check_grid_path(grid_path, overwrite) if grid_path is not None else None
    agent_generator = getattr(policy_or_generator, "generator", None)  # an agent: what it trains
    generator = agent_generator if isinstance(agent_generator, Generator) else as_generator(policy_or_generator)
    rm = rewards.make(reward)
    records = suites.load(suite)
    if max_prompts is not None:
        kept: dict[str, list] = {}
        for r in records:
            if len(kept.setdefault(r.category, [])) < max_prompts:
                kept[r.category].append(r)
        records = [r for group in kept.values() for r in group]
    prompts = [r for r in records for _ in range(images_per_prompt)]
    torch_rng = torch.Generator(generator.device).manual_seed(seed)
    was_training = generator.policy.training
    generator.policy.eval()
    scores, grid_images = [], []
    for start in tqdm(range(0, len(prompts), batch_size), desc=f"eval {suite}", disable=not progress, unit="batch"):
        batch = prompts[start : start + batch_size]
        encoded = generator.encode_prompts([r.text for r in batch])
        tokens = generator.policy.sample(encoded, sampling or generator.default_sampling, torch_rng).tokens
        images = generator.decode(tokens)
        scores.append(rm(images, batch))
        if grid_path is not None and start < 16 * images_per_prompt:
            grid_images.append(images)
    generator.policy.train(was_training)
    per_image = np.concatenate(scores).reshape(len(records), images_per_prompt)
    by_category: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_category.setdefault(r.category, []).append(i)
    rng = np.random.default_rng(seed)
    groups = {c: per_image[rows].mean(1) for c, rows in by_category.items()}
    categories = {c: stratified_bootstrap([g], _mean_of_means, rng) for c, g in groups.items()}
    overall = stratified_bootstrap(list(groups.values()), _mean_of_means, rng)
    if grid_path is not None:
        from PIL import Image

        grid = image_grid(np.concatenate(grid_images)[: 16 * images_per_prompt], images_per_prompt * 4, scale=4)
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(grid_path)
    return EvalResult(suite, rm.name, overall, categories, per_image)
