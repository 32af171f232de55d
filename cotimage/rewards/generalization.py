"""How well a reward model generalizes: its pairwise ranking accuracy against the checker.

For each suite, prompts are drawn evenly across its categories and the base generator
samples ``images_per_prompt`` images for each; the checker scores them (fraction of
criteria met). Every two images of one prompt with different checker scores make a pair,
and a reward ranks the pair right when it orders the two images as the checker does (a
tie in the reward counts one half, as AUC counts ties). Accuracy pools all pairs; its 95%
interval resamples prompts within categories (across all prompts when a category has only
one), since the pairs of one prompt share images and are not independent.

In-domain is ``shapes/compbench-val`` (unseen prompts of the kind the learned rewards are
trained on, ``shapes/compbench-train``); out-of-domain is ``shapes/geneval`` (short
templated prompts no learned reward sees). This is how the study measures a reward
model's own generalization (its finding 2).

:func:`matching` asks a different question, image-text matching rather than ranking the
generator's mistakes: does the reward score a render of the prompt's own scene above a
render of another scene of the suite?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from cotimage import generators
from cotimage.checks import require_count, require_seed
from cotimage.rewards.base import RewardModel
from cotimage.shapes import check, render
from cotimage.stats import Interval, stratified_bootstrap
from cotimage.suites import PromptRecord
from cotimage.suites import load as load_suite

DEFAULT_SUITES: tuple[str, ...] = ("shapes/compbench-val", "shapes/geneval")


@dataclass(frozen=True)
class RankingSet:
    """Base-generator images for some prompts, with the checker's scores.

    Attributes:
        records: The P prompts.
        images: uint8 (P * K, H, W, 3), the K images of prompt p at rows ``p * K .. p * K + K - 1``.
        checker: (P, K) checker scores (fraction of criteria met).
    """

    records: tuple[PromptRecord, ...]
    images: np.ndarray = field(repr=False)
    checker: np.ndarray = field(repr=False)

    @property
    def images_per_prompt(self) -> int:
        return self.checker.shape[1]

    @property
    def prompts(self) -> list[PromptRecord]:
        """One prompt per image, aligned with :attr:`images`."""
        return [r for r in self.records for _ in range(self.images_per_prompt)]

    @classmethod
    def build(
        cls,
        records: Sequence[PromptRecord],
        images_per_prompt: int,
        seed: int,
        generator: str = "shapes",
        batch_size: int = 256,
    ) -> RankingSet:
        """Sample ``images_per_prompt`` images per record with a generator and check them."""
        if images_per_prompt < 2:
            raise ValueError(f"images_per_prompt={images_per_prompt} must be >= 2 to make pairs")
        gen = generators.load(generator)
        prompts = [r for r in records for _ in range(images_per_prompt)]
        images = np.concatenate(
            [
                gen.generate([r.text for r in prompts[start : start + batch_size]], seed=_batch_seed(seed, start))
                for start in range(0, len(prompts), batch_size)
            ]
        )
        checker = np.array([check(image, r.spec).score for image, r in zip(images, prompts)], np.float32)
        return cls(tuple(records), images, checker.reshape(len(records), images_per_prompt))


def _batch_seed(seed: int, start: int) -> int:
    return int(np.random.default_rng([seed, start]).integers(2**31))


def stratified_prompts(records: Sequence[PromptRecord], n: int | None, rng: np.random.Generator) -> list[PromptRecord]:
    """``n`` records drawn without replacement, as evenly across categories as they allow (all if ``None``)."""
    by_category: dict[str, list[PromptRecord]] = {}
    for r in records:
        by_category.setdefault(r.category, []).append(r)
    if n is None or n >= len(records):
        return list(records)
    shuffled = [[group[i] for i in rng.permutation(len(group))] for group in by_category.values()]
    picked: list[PromptRecord] = []
    while len(picked) < n:  # round robin, so small categories run out first and larger ones fill in
        for group in shuffled:
            if group and len(picked) < n:
                picked.append(group.pop())
    return picked


@lru_cache(maxsize=4)
def ranking_set(
    suite: str, prompts_per_suite: int | None, images_per_prompt: int, seed: int, generator: str = "shapes"
) -> RankingSet:
    """The (cached) ranking set of a suite: the same arguments give the same images."""
    records = stratified_prompts(load_suite(suite), prompts_per_suite, np.random.default_rng(seed))
    return RankingSet.build(records, images_per_prompt, seed, generator)


#: Kinds of pair: one image meets every criterion (the other does not), or both miss some.
PAIR_KINDS: tuple[str, ...] = ("one passes", "both fail")


def pair_outcomes(checker: np.ndarray, scores: np.ndarray, kind: str | None = None) -> np.ndarray:
    """(P, 2): per prompt, pairs ranked right (ties in ``scores`` count 1/2) and pairs in all.

    Args:
        checker: (P, K) checker scores; pairs tied here are no pairs.
        scores: (P, K) reward scores of the same images.
        kind: Count only pairs of one of :data:`PAIR_KINDS` (``None``: every pair).
    """
    if kind is not None and kind not in PAIR_KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; choose None or one of {list(PAIR_KINDS)}")
    i, j = np.triu_indices(checker.shape[1], k=1)
    truth = np.sign(checker[:, i] - checker[:, j])
    guess = np.sign(scores[:, i] - scores[:, j])
    counted = truth != 0
    if kind is not None:
        one_passes = (checker[:, i] == 1) | (checker[:, j] == 1)
        counted &= one_passes if kind == "one passes" else ~one_passes
    right = np.where(guess == 0, 0.5, (guess == truth).astype(np.float64)) * counted
    return np.stack([right.sum(1), counted.sum(1)], 1).astype(np.float64)


def _pooled_accuracy(groups: list[np.ndarray]) -> float:
    outcomes = np.concatenate(groups)
    total = outcomes[:, 1].sum()
    return float(outcomes[:, 0].sum() / total) if total else float("nan")  # no pairs: no accuracy


def _require_pairs(pairs: int, suite: str, argument: str) -> None:
    if pairs == 0:
        raise ValueError(f"no pair on {suite!r} has two different checker scores to rank; raise {argument}")


def _accuracy_by_category(
    outcomes: np.ndarray, records: Sequence[PromptRecord], seed: int
) -> tuple[Interval, dict[str, float]]:
    """Pooled accuracy of per-prompt ``outcomes`` (P, 2) with a bootstrap over prompts, and per category.

    The bootstrap resamples prompts within categories, or across all prompts when a category
    has only one: resampled on its own, a lone prompt would add no spread to the interval.
    """
    by_category: dict[str, list[int]] = {}
    for row, record in enumerate(records):
        by_category.setdefault(record.category, []).append(row)
    groups = [outcomes[rows] for rows in by_category.values()]
    strata = groups if min(map(len, groups)) >= 2 else [outcomes]
    accuracy = stratified_bootstrap(strata, _pooled_accuracy, np.random.default_rng(seed))
    return accuracy, {c: _pooled_accuracy([g]) for c, g in zip(by_category, groups)}


@dataclass
class GeneralizationResult:
    """Ranking accuracy of one reward model on each suite.

    Attributes:
        reward: The reward's name.
        accuracy: Per suite, pooled pairwise accuracy with its 95% interval.
        pairs: Per suite, how many pairs were judged.
        categories: Per suite, the pooled accuracy of each category.
        pair_kinds: Per suite and kind of pair (:data:`PAIR_KINDS`), the pooled accuracy and
            the number of pairs. A match classifier at its best ties every two failing
            images (``scene-strict``: 1.0 and 0.5).
    """

    reward: str
    accuracy: dict[str, Interval]
    pairs: dict[str, int]
    categories: dict[str, dict[str, float]]
    pair_kinds: dict[str, dict[str, dict[str, float]]]

    def to_dict(self) -> dict:
        return {
            "reward": self.reward,
            "accuracy": {k: asdict(v) for k, v in self.accuracy.items()},
            "pairs": self.pairs,
            "categories": self.categories,
            "pair_kinds": self.pair_kinds,
        }


def generalization(
    rm: RewardModel | str | Callable,
    suites: str | Sequence[str] = DEFAULT_SUITES,
    prompts_per_suite: int | None = 300,
    images_per_prompt: int = 4,
    seed: int = 0,
    generator: str = "shapes",
) -> GeneralizationResult:
    """Pairwise ranking accuracy of a reward model against the checker, per suite.

    Args:
        rm: A reward model, a reward spec or a callable (see :func:`cotimage.rewards.make`).
        suites: A suite or suites to measure on; by default in-domain then out-of-domain.
        prompts_per_suite: Prompts drawn per suite, evenly across categories (``None``: all).
        images_per_prompt: Base-generator images per prompt (each prompt gives up to
            ``K * (K - 1) / 2`` pairs).
        seed: Seeds the prompts, the images and the bootstrap.
        generator: The generator whose images are ranked.
    """
    from cotimage.rewards import make  # the registry imports this module

    require_count("prompts_per_suite", prompts_per_suite, none_means="all")
    require_count("images_per_prompt", images_per_prompt, least=2)  # a pair needs two images of one prompt
    require_seed("seed", seed)
    names = [suites] if isinstance(suites, str) else list(suites) if isinstance(suites, (list, tuple)) else None
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"suites={suites!r} must be a suite name or a non-empty list of them")
    for name in names:  # every name before any sampling
        load_suite(name)
    rm = make(rm)
    accuracy, pairs, categories, pair_kinds = {}, {}, {}, {}
    for suite in names:
        data = ranking_set(suite, prompts_per_suite, images_per_prompt, seed, generator)
        scores = rm(data.images, data.prompts).reshape(data.checker.shape)
        outcomes = pair_outcomes(data.checker, scores)
        _require_pairs(int(outcomes[:, 1].sum()), suite, "prompts_per_suite or images_per_prompt")
        accuracy[suite], categories[suite] = _accuracy_by_category(outcomes, data.records, seed)
        pairs[suite] = int(outcomes[:, 1].sum())
        by_kind = {kind: pair_outcomes(data.checker, scores, kind) for kind in PAIR_KINDS}
        pair_kinds[suite] = {
            kind: {"accuracy": _pooled_accuracy([o]), "pairs": int(o[:, 1].sum())} for kind, o in by_kind.items()
        }
    return GeneralizationResult(rm.name, accuracy, pairs, categories, pair_kinds)


def table(results: Sequence[GeneralizationResult], by_pair_kind: bool = False) -> str:
    """A markdown table: one row per reward, one column per suite (accuracy [95% CI], pairs).

    With ``by_pair_kind``, one column per suite and kind of pair instead (accuracy, pairs).
    """
    suite_names = list(results[0].accuracy)
    if by_pair_kind:
        columns = [f"{s}, {k}" for s in suite_names for k in PAIR_KINDS]
        rows = [[f"{r.pair_kinds[s][k]['accuracy']:.3f} ({r.pair_kinds[s][k]['pairs']})" for s in suite_names for k in PAIR_KINDS]
                for r in results]
    else:
        columns = suite_names
        rows = [[f"{r.accuracy[s]} ({r.pairs[s]} pairs)" for s in suite_names] for r in results]
    head = "| reward | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns)
    return "\n".join([head, *(f"| {r.reward} | " + " | ".join(row) + " |" for r, row in zip(results, rows))])


@dataclass
class MatchingResult:
    """How often a reward prefers a render of the prompt's scene to a render of another scene.

    Attributes:
        reward: The reward's name.
        suite: The suite the prompts and scenes come from.
        accuracy: The fraction of pairs preferred right (ties count one half), with its 95% interval.
        pairs: Pairs judged: prompts whose other scene the checker scores below their own.
        categories: The accuracy of each category.
    """

    reward: str
    suite: str
    accuracy: Interval
    pairs: int
    categories: dict[str, float]

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy": asdict(self.accuracy)}


def matching(
    rm: RewardModel | str | Callable, suite: str = "shapes/compbench-val", prompts: int | None = 300, seed: int = 0
) -> MatchingResult:
    """Image-text matching: the reward's preference for a render of the prompt's scene over another scene's.

    Prompts are drawn evenly across the suite's categories; each gets a render of its own
    scene and of the previous drawn prompt's scene (so another category's, mostly). A pair counts
    when the checker scores the other render lower, and the reward gets it right when it
    scores the own render higher (a tie counts one half). The interval resamples prompts
    within categories (across all prompts when a category has only one).

    Args:
        rm: A reward model, a reward spec or a callable (see :func:`cotimage.rewards.make`).
        suite: Where the prompts and scenes come from.
        prompts: Prompts drawn, evenly across categories (``None``: all).
        seed: Seeds the prompts, the renders' layouts and the bootstrap.
    """
    from cotimage.rewards import make  # the registry imports this module

    require_count("prompts", prompts, least=2, none_means="all")
    require_seed("seed", seed)
    rm = make(rm)
    records = stratified_prompts(load_suite(suite), prompts, np.random.default_rng(seed))
    own = np.stack([render(r.spec, seed=[seed, i]) for i, r in enumerate(records)])
    other = np.roll(own, 1, axis=0)
    counted = np.array([check(image, r.spec).score < check(mine, r.spec).score
                        for image, mine, r in zip(other, own, records)])
    margin = rm(own, records) - rm(other, records)
    outcomes = np.stack([np.where(margin == 0, 0.5, (margin > 0).astype(np.float64)), np.ones(len(records))], 1)
    _require_pairs(int(counted.sum()), suite, "prompts")
    accuracy, categories = _accuracy_by_category(outcomes * counted[:, None], records, seed)
    return MatchingResult(rm.name, suite, accuracy, int(counted.sum()), categories)
