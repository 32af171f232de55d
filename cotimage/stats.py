"""Shared statistics: means with bootstrap intervals (evaluation and reward generalization use them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cotimage.checks import require_count


@dataclass(frozen=True)
class Interval:
    """A mean with a 95% bootstrap interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def stratified_bootstrap(
    groups: list[np.ndarray], statistic: Callable[[list[np.ndarray]], float], rng: np.random.Generator, n: int = 1000
) -> Interval:
    """95% percentile interval of ``statistic`` resampling each group with replacement.

    A resample on which ``statistic`` is NaN (a ranking accuracy of resampled prompts without a
    pair) carries no value and is left out of the interval.
    """
    require_count("n", n)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng={rng!r} must be a numpy Generator, e.g. np.random.default_rng(0)")
    if not isinstance(groups, (list, tuple)) or not groups or any(np.ndim(g) < 1 or len(g) == 0 for g in groups):
        raise ValueError("groups must be a non-empty list of non-empty arrays (one per stratum)")
    groups = [np.asarray(g) for g in groups]
    values = [statistic([g[rng.integers(len(g), size=len(g))] for g in groups]) for _ in range(n)]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return Interval(float(statistic(groups)), float(low), float(high))


# -- aggregates over runs x tasks (Agarwal et al., 2021, "Deep RL at the edge of the statistical precipice") --


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores.

    As rliable (``scipy.stats.trim_mean(scores, 0.25, axis=None)``): ``int(0.25 * n)`` scores are
    cut from each end; in numpy, since the bootstrap calls it thousands of times.
    """
    flat = _finite("scores", scores).ravel()
    flat.sort()
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def mean_score(scores: np.ndarray) -> float:
    """Mean of all scores of a (runs, tasks) matrix (the mean over runs of each run's task average)."""
    return float(np.mean(_finite("scores", scores)))


def _finite(name: str, scores: np.ndarray) -> np.ndarray:
    """``scores`` as a float64 array; ``ValueError`` naming ``name`` if empty or not finite (NaN would sort as best)."""
    array = np.asarray(scores, np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be non-empty and finite, got {array!r:.80}")
    return array


def _columns(name: str, scores: np.ndarray) -> list[np.ndarray]:
    scores = _finite(name, scores)
    if scores.ndim != 2:
        raise ValueError(f"{name} must be a non-empty (runs, tasks) matrix, got shape {scores.shape}")
    return list(scores.T)


def runs_bootstrap(
    scores: np.ndarray, statistic: Callable[[np.ndarray], float], rng: np.random.Generator, n: int = 1000
) -> Interval:
    """``statistic`` of a (runs, tasks) score matrix with rliable's stratified bootstrap interval.

    Each replicate resamples the runs with replacement within every task independently.

    Args:
        scores: (runs, tasks) scores, e.g. final per-category scores of each seed.
        statistic: Matrix -> float, e.g. :func:`iqm` or :func:`mean_score`.
        rng: Draws the resamples.
        n: Bootstrap replicates.
    """
    return stratified_bootstrap(_columns("scores", scores), lambda cols: statistic(np.stack(cols, 1)), rng, n)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): over tasks, the mean probability that a run of X beats a run of Y on that task.

    Per task this is the Mann-Whitney U statistic over ``n_x * n_y`` (ties count one half),
    as rliable's ``probability_of_improvement``.

    Args:
        x: (runs_x, tasks) scores of algorithm X.
        y: (runs_y, tasks) scores of algorithm Y on the same tasks.
    """
    cx, cy = _columns("x", x), _columns("y", y)
    if len(cx) != len(cy):
        raise ValueError(f"x and y must score the same tasks, got {len(cx)} and {len(cy)} columns")
    diff = np.asarray(x, np.float64)[:, None, :] - np.asarray(y, np.float64)[None, :, :]  # (runs_x, runs_y, tasks)
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))  # every task has runs_x * runs_y pairs: one mean


def improvement_bootstrap(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int = 1000) -> Interval:
    """:func:`probability_of_improvement` with a 95% interval resampling X's and Y's runs within each task."""
    cx, cy = _columns("x", x), _columns("y", y)
    tasks = len(cx)  # probability_of_improvement checks that y has as many
    return stratified_bootstrap(
        [*cx, *cy], lambda cols: probability_of_improvement(np.stack(cols[:tasks], 1), np.stack(cols[tasks:], 1)), rng, n
    )
