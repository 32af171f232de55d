"""Train the shapes world's learned rewards and write them to cotimage/assets/ in fp16.

    python scripts/train_rewards.py [MODEL ...] [--images-per-prompt 8] [--threads 1] [--data FILE.npz]
                                    [--device cuda] [--workers N] [--force]

MODEL is any of ``clip``, ``pref``, ``pref-narrow``, ``orm`` (default: all four). One run
takes ``--prompts`` prompts of ``shapes/compbench-train`` (default: all, evenly across its
categories otherwise), samples ``--images-per-prompt`` images for each with the shipped base
generator and scores them with the checker; every model trains on that one set (``--data
FILE.npz`` saves it outside the repository for later runs to reuse). Run it with the
checkout on ``PYTHONPATH`` (``PYTHONPATH=. python scripts/...``) when another copy of
``cotimage`` is installed, so that the script trains this checkout's networks.

For ``pref`` and ``orm`` (:data:`POOLED`), beside each generated image,
:data:`COUNTERFACTUALS_PER_IMAGE` counterfactuals are drawn once and scored by the checker
against the prompt (:class:`Counterfactuals`, in
``--workers`` processes): an :func:`edit` of the image (one object recoloured or erased, or
the image mirrored) or, :data:`FOREIGN` of the time, another prompt's generated image. The
generator's own samples mostly differ in which shapes came out; the edits add pairs that
differ in one colour, count or left-right relation, and the foreign images wrong scenes.

- ``pref``: Bradley-Terry loss on every pair of one prompt's images whose checker scores
  differ (``-log sigmoid(r_better - r_worse)``), as HPS and ImageReward are trained on ranked
  images of one prompt. A group is a prompt's generated images plus as many of its
  counterfactuals.
- ``pref-narrow``: the Bradley-Terry loss on a narrow prompt set, :data:`NARROW_PROMPTS`
  (140) of compbench-train's 7,000 prompts, 28 per category, instead of all of them. It is
  narrow in its counterfactuals too: a fresh :func:`edit` of each image at every step, no
  wrong scenes (the first recipe). Narrowed to two categories (``complex`` and ``size``)
  instead, it ranked as well as ``pref`` in and out of domain under checker v2.
- ``orm``: binary cross-entropy on "the image passes every checker criterion" over
  generated images and their counterfactuals (half each), positives weighted up to
  balance the classes. It stays a match classifier: labels are pass or fail, never a
  closeness; the near-miss and wrong-scene negatives are what lets its probability order
  failures.
- ``clip``: the open_clip shapes CLIP, contrastive (symmetric InfoNCE) on renders of the
  prompts' scenes and base-generator images that pass, with hard negatives per prompt:
  the description of a minimally altered scene and a generated image that fails.

``pref``, ``pref-narrow`` and ``orm`` are :class:`~cotimage.rewards.learned.ScorerNet` s of
:data:`SCORERS` (``--device cuda`` trains them on a GPU; the shipped ones were trained on
the CPU, ``--threads 1``). Every model sees the images augmented the same way, which the checker cannot tell
apart: the palette colours permuted (in the image and in the prompt's colour words) and a
horizontal flip with "left" and "right" swapped. At the end each model's ranking accuracy
in-domain and out-of-domain is printed (:func:`cotimage.rewards.generalization`).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from cotimage import generators, suites
from cotimage.cli import check_output_file, parse_count, parse_device, parse_path, parse_seed
from cotimage.generators.shapes import WordTokenizer
from cotimage.rewards import generalization
from cotimage.rewards.clip import (
    CompactTokenizer,
    OpenCLIPReward,
    build_shapes_clip,
    preprocess,
    save_shapes_clip,
    shapes_clip_config,
)
from cotimage.rewards.generalization import RankingSet, stratified_prompts, table
from cotimage.rewards.learned import ASSETS, LearnedReward, ScorerConfig, ScorerNet, save_net, shipped_weights
from cotimage.shapes import CHECKER_VERSION, check, detect, render
from cotimage.shapes.grammar import VOCABULARY, describe
from cotimage.shapes.render import RENDER_MARGIN, relation_holds
from cotimage.shapes.spec import BACKGROUND, COLORS, MAX_COUNT, RELATIONS, ObjectSpec, Relation, SceneSpec, alter
from cotimage.suites import PromptRecord
from cotimage.suites.build import HELD_OUT

MODELS = ("clip", "pref", "pref-narrow", "orm")
#: How many of the training set's prompts the narrow variant trains on, evenly across the five
#: categories. Narrowing by category did not narrow it under checker v2: trained on ``complex``
#: alone (1,400 prompts, every kind of criterion) it ranked 0.811 in-domain and 0.820
#: out-of-domain, as ``pref`` does; the criteria compose.
NARROW_PROMPTS = 140


def prompt_set(model: str, records: Sequence[PromptRecord], seed: int) -> Callable[[PromptRecord], bool]:
    """Which training prompts ``model`` learns from: all of them, or for ``pref-narrow``
    :data:`NARROW_PROMPTS` of ``records`` evenly across categories, drawn with ``seed`` (all
    of them when there are no more)."""
    if model != "pref-narrow":
        return lambda record: True
    texts = frozenset(r.text for r in stratified_prompts(records, NARROW_PROMPTS, np.random.default_rng(seed)))
    return lambda record: record.text in texts
PALETTE = np.array([BACKGROUND, *COLORS.values()], np.uint8)
#: Colour permutations drawn before falling back to none (a few held-out pairs rule out many).
_PERMUTATION_TRIES = 100
_SWAPPABLE = re.compile(r"\b(" + "|".join([*COLORS, "left", "right"]) + r")\b")


def _npz_path(value: str) -> Path:
    """``--data``'s type: numpy saves to ``name.npz`` whatever it is given, so the name must say so."""
    if not value.endswith(".npz"):
        raise argparse.ArgumentTypeError(f"{value!r} must end in .npz (numpy would write {value}.npz, and never find it again)")
    return Path(value)


def output_path(out_dir: Path, model: str) -> Path:
    """Where ``model``'s weights are written: its shipped file name, under ``out_dir``."""
    return out_dir / shipped_weights(model).name


# -- augmentation --------------------------------------------------------------------------------
def palette_index(images: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) images whose pixels are palette colours -> palette indices (B, H, W)."""
    index = (images[..., None, :] == PALETTE).all(-1).argmax(-1).astype(np.uint8)
    if not (PALETTE[index] == images).all():
        raise ValueError("augmentation needs images painted in the palette only")
    return index


def draw_augmentation(rng: np.random.Generator, specs: Sequence[SceneSpec]) -> tuple[np.ndarray, bool]:
    """A colour permutation (new index of each palette colour) and whether to flip left-right.

    The permutation never makes one of ``specs`` (the prompts it will recolour) name a
    colour-shape composition that compbench holds out (:data:`~cotimage.suites.build.HELD_OUT`):
    ``shapes/geneval`` names them, and the out-of-domain rankings would not be out of domain
    if the rewards had trained on them. Train prompts name none, so the identity always qualifies.
    """
    names = list(COLORS)
    named = {(names.index(o.color), o.shape) for spec in specs for o in spec.objects if o.color is not None}
    flip = bool(rng.random() < 0.5)
    for _ in range(_PERMUTATION_TRIES):
        perm = rng.permutation(len(COLORS))
        if not any((names[perm[color]], shape) in HELD_OUT for color, shape in named):
            return perm, flip
    return np.arange(len(COLORS)), flip


def apply_augmentation(index: np.ndarray, text: str, perm: np.ndarray, flip: bool) -> tuple[np.ndarray, str]:
    """Recolour (and maybe mirror) one palette-indexed image (H, W), and its prompt to match."""
    table = PALETTE[np.concatenate([[0], perm + 1])]  # index 0, the background, stays
    names = list(COLORS)
    swap = {name: names[perm[i]] for i, name in enumerate(names)}
    swap.update({"left": "right", "right": "left"} if flip else {"left": "left", "right": "right"})
    return table[index[:, ::-1] if flip else index], _SWAPPABLE.sub(lambda m: swap[m.group(1)], text)


# -- data ---------------------------------------------------------------------------------------
def training_set(prompts: int | None, images_per_prompt: int, seed: int, cache: Path | None) -> RankingSet:
    """Base-generator images for compbench-train prompts, scored by the checker.

    Args:
        prompts: How many prompts, drawn evenly across categories (``None``: all 7,000).
        images_per_prompt: Images sampled per prompt.
        seed: Seeds the prompts and the images.
        cache: An ``.npz`` file (outside the repository) to reuse the set from, or to write
            it to, so several runs can share one generation.
    """
    train = suites.load("shapes/compbench-train")
    recipe = np.array([-1 if prompts is None else prompts, images_per_prompt, seed])
    # The images come from the shipped generator and their labels from the checker: a set made
    # with other weights or another checker version is another set.
    made_with = np.array([CHECKER_VERSION, int(generators.weights_digest("shapes")["shapes_generator.safetensors"], 16)])
    if cache is not None and cache.exists():
        stored = np.load(cache)
        if not np.array_equal(stored["recipe"], recipe):
            raise ValueError(f"--data {cache} holds another set (prompts, images, seed = {stored['recipe']}); "
                             "delete it or pass another path")
        if "made_with" not in stored.files or not np.array_equal(stored["made_with"], made_with):
            raise ValueError(f"--data {cache} was made with another checker version or generator weights; "
                             "delete it or pass another path")
        records = tuple(train[i] for i in stored["indices"])
        return RankingSet(records, stored["images"], stored["checker"])
    records = stratified_prompts(train, prompts, np.random.default_rng(seed))
    data = RankingSet.build(records, images_per_prompt, seed)
    if cache is not None:
        position = {id(r): i for i, r in enumerate(train)}
        indices = np.array([position[id(r)] for r in records])
        np.savez_compressed(cache, recipe=recipe, made_with=made_with, indices=indices, images=data.images, checker=data.checker)
    return data


def groups_of(data: RankingSet, keep: Callable) -> np.ndarray:
    """Indices of the prompts ``keep`` accepts whose images do not all tie."""
    return np.array([p for p, r in enumerate(data.records) if keep(r) and np.ptp(data.checker[p]) > 0])


def schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over 5% of the steps, then cosine decay to 0."""
    warmup = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )


def optimize(
    params, losses: Iterator[torch.Tensor], steps: int, lr: float, log_every: int, label: str
) -> None:
    """AdamW with warm-up and cosine decay over ``steps`` losses; prints a running mean."""
    params = list(params)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lr_schedule = schedule(optimizer, steps)
    start, recent = time.perf_counter(), []
    for step in range(1, steps + 1):
        loss = next(losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_schedule.step()
        recent = [*recent[-99:], loss.item()]
        if step % log_every == 0 or step == steps:
            print(f"{label} step {step}/{steps} loss {np.mean(recent):.4f} {time.perf_counter() - start:.0f}s", flush=True)


# -- pref and orm ---------------------------------------------------------------------------------
def edit(index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A counterfactual of one palette-indexed image (H, W): one object recoloured or erased, or a mirror.

    The checker then scores the edit against the same prompt, so a group gains pairs that
    differ in a single colour, count or left-right criterion, which the base generator's
    own samples rarely do (they mostly differ in which shapes came out at all).
    """
    kind = rng.integers(3)
    if kind == 2:  # mirrored while the prompt is not: "left of" becomes "right of"
        return index[:, ::-1].copy()
    objects, count = ndimage.label(index > 0)
    if count == 0:
        return index.copy()
    mask = objects == rng.integers(1, count + 1)
    out = index.copy()
    if kind == 0:
        current = np.bincount(index[mask]).argmax()
        out[mask] = rng.choice([c for c in range(1, len(PALETTE)) if c != current])
    else:
        out[mask] = 0
    return out


@dataclass(frozen=True)
class Counterfactuals:
    """Per prompt, ``M`` counterfactual images and their checker scores against the prompt.

    Attributes:
        index: Palette-indexed images (prompts, M, H, W).
        checker: Their checker scores (prompts, M).
    """

    index: np.ndarray
    checker: np.ndarray

    @classmethod
    def build(cls, data: RankingSet, per_image: int, seed: int, workers: int) -> Counterfactuals:
        """``per_image`` counterfactuals of each generated image, checked once, in ``workers`` processes.

        Checking an image costs a detection, about 40 times a training step's share of the
        network on a GPU, so counterfactuals are drawn once here rather than at every step.
        """
        global _SOURCE
        index = palette_index(data.images).reshape(len(data.records), data.images_per_prompt, *data.images.shape[1:3])
        _SOURCE = index, data.records  # forked workers read it without a copy per job
        # A fixed number of chunks, each with its own seed: the same set for any number of workers.
        chunks = np.array_split(np.arange(len(index)), 64)
        jobs = [(chunk, per_image, [seed, i]) for i, chunk in enumerate(chunks) if len(chunk)]
        with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
            parts = pool.starmap(_counterfactuals, jobs)
        return cls(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


_SOURCE: tuple[np.ndarray, tuple] = (np.zeros((0, 1, 1, 1), np.uint8), ())


def _counterfactuals(prompts: np.ndarray, per_image: int, seed: list[int]) -> tuple[np.ndarray, np.ndarray]:
    index, records = _SOURCE
    rng = np.random.default_rng(seed)
    images = np.stack([[counterfactual(index, p, j, rng) for j in range(index.shape[1]) for _ in range(per_image)]
                       for p in prompts])
    scores = np.array([[check(PALETTE[e], records[p].spec).score for e in row] for p, row in zip(prompts, images)])
    return images, scores.astype(np.float32)


def counterfactual(index: np.ndarray, p: int, j: int, rng: np.random.Generator) -> np.ndarray:
    """An :func:`edit` of prompt ``p``'s image ``j`` or, ``FOREIGN`` of the time, another prompt's image.

    Args:
        index: Palette-indexed images (prompts, K, H, W).
        p: The prompt.
        j: Which of its images to edit.
        rng: Draws the edit.
    """
    if len(index) > 1 and rng.random() < FOREIGN:  # a wrong scene altogether: teaches matching, not only ranking near-misses
        return index[(p + rng.integers(1, len(index))) % len(index), rng.integers(index.shape[1])]
    return edit(index[p, j], rng)


def score(net: ScorerNet, images: list[np.ndarray], texts: list[str], tokenizer: WordTokenizer) -> torch.Tensor:
    """The net's logits for palette-space images and their prompts, on the net's device."""
    device = next(net.parameters()).device
    encoded = tokenizer(texts)
    return net(torch.from_numpy(np.stack(images)).to(device), encoded.ids.to(device), encoded.mask.to(device))


def pref_losses(
    net: ScorerNet, data: RankingSet, extra: Counterfactuals | None, keep: Callable, groups: int, seed: int
) -> Iterator[torch.Tensor]:
    """Bradley-Terry losses over all untied pairs of ``groups`` prompts' images (and counterfactuals) per step.

    A group is one prompt's generated images plus as many counterfactuals, scored by the
    checker, all augmented with one draw so that every image is judged against one prompt.
    The counterfactuals come from the checked pool ``extra`` or, when it is ``None``, are a
    fresh :func:`edit` of each image, checked at every step (``pref-narrow``'s recipe).
    """
    rng = np.random.default_rng(seed)
    prompts = groups_of(data, keep)
    if len(prompts) == 0:
        raise ValueError("no training prompt in the model's prompt set has images the checker scores apart; "
                         "pass more --prompts or --images-per-prompt")
    k = data.images_per_prompt
    index = palette_index(data.images).reshape(len(data.records), k, *data.images.shape[1:3])
    tokenizer = WordTokenizer(net.cfg.prompt_tokens - 1)
    while True:
        images, texts, checker = [], [], []
        for p in prompts[rng.integers(len(prompts), size=groups)]:
            record = data.records[p]
            if extra is None:
                counter = [edit(image, rng) for image in index[p]]
                counter_scores = [check(PALETTE[e], record.spec).score for e in counter]
            else:
                drawn = rng.choice(extra.checker.shape[1], k, replace=False)
                counter, counter_scores = list(extra.index[p, drawn]), list(extra.checker[p, drawn])
            checker.append([*data.checker[p], *counter_scores])
            perm, flip = draw_augmentation(rng, [record.spec])
            for image in [*index[p], *counter]:
                image, text = apply_augmentation(image, record.text, perm, flip)
                images.append(image)
                texts.append(text)
        scores = score(net, images, texts, tokenizer).view(groups, 2 * k)
        checker = torch.tensor(checker, device=scores.device)
        better = (checker[:, :, None] > checker[:, None, :]).float()
        margins = scores[:, :, None] - scores[:, None, :]
        yield -(F.logsigmoid(margins) * better).sum() / better.sum()


def orm_losses(
    net: ScorerNet, data: RankingSet, extra: Counterfactuals, keep: Callable, batch: int, seed: int
) -> Iterator[torch.Tensor]:
    """Binary cross-entropy of "passes every criterion" on random images and counterfactuals.

    Half the images are one of the prompt's counterfactuals, labelled by the checker,
    which puts near-miss failures (and wrong scenes) beside the passing images. Passing
    images are up-weighted by the generated images' fail/pass ratio; counterfactuals pass
    less often, so passes carry about 42% of the weight, not half (the shipped orm's recipe).
    """
    rng = np.random.default_rng(seed)
    k = data.images_per_prompt
    prompts = np.array([p for p, r in enumerate(data.records) if keep(r)])
    passed = data.checker == 1.0
    positives = int(passed[prompts].sum())  # at least 1, so a tiny set without a pass still trains
    pos_weight = torch.tensor((passed[prompts].size - positives) / max(positives, 1))
    index = palette_index(data.images).reshape(len(data.records), k, *data.images.shape[1:3])
    tokenizer = WordTokenizer(net.cfg.prompt_tokens - 1)
    while True:
        images, texts, labels = [], [], []
        for p in prompts[rng.integers(len(prompts), size=batch)]:
            record, j = data.records[p], rng.integers(k)
            image, label = index[p, j], passed[p, j]
            if rng.random() < 0.5:
                m = rng.integers(extra.checker.shape[1])
                image, label = extra.index[p, m], extra.checker[p, m] == 1.0
            image, text = apply_augmentation(image, record.text, *draw_augmentation(rng, [record.spec]))
            images.append(image)
            texts.append(text)
            labels.append(float(label))
        logits = score(net, images, texts, tokenizer)
        labels = torch.tensor(labels, device=logits.device)
        yield F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight.to(logits.device))


# -- clip ----------------------------------------------------------------------------------------
def caption(image: np.ndarray, rng: np.random.Generator) -> SceneSpec | None:
    """A scene the checker passes ``image`` against, from what its detector finds (``None`` if nothing).

    Each recognised shape becomes a group with its count, its colour (usually) and size
    (sometimes) when all its detections share them; consecutive single objects get a
    relation that holds with the renderer's margin half of the time. Unrecognised blobs go
    unmentioned, as the checker ignores them.
    """
    groups: dict[str, list] = {}
    for detection in detect(image):
        if detection.shape is not None:
            groups.setdefault(detection.shape, []).append(detection)
    if not groups or any(len(g) > MAX_COUNT for g in groups.values()):
        return None
    found = [groups[shape] for shape in rng.permutation(list(groups))]
    objects = [
        ObjectSpec(
            g[0].shape,
            g[0].color if len({d.color for d in g}) == 1 and rng.random() < 0.8 else None,
            g[0].size if len({d.size for d in g}) == 1 and rng.random() < 0.3 else None,
            len(g),
        )
        for g in found
    ]
    relations: list[Relation] = []
    for i in range(len(found) - 1):
        if len(found[i]) == len(found[i + 1]) == 1 and rng.random() < 0.5:
            a, b = found[i][0].center, found[i + 1][0].center
            holding = [r for r in RELATIONS if relation_holds(r, a, b, RENDER_MARGIN)]
            if holding:
                relations.append(Relation(i, holding[rng.integers(len(holding))], i + 1))
    return SceneSpec(tuple(objects), tuple(relations))


def clip_losses(
    model: torch.nn.Module, tokenizer: CompactTokenizer, data: RankingSet, batch: int, seed: int
) -> Iterator[torch.Tensor]:
    """Symmetric InfoNCE over a batch of examples, each a positive pair and two hard negatives.

    Half the examples pair a prompt with a fresh render of its scene (or a generated image
    that passes it); their hard negatives are a generated image of the prompt that fails
    (else a render of a minimally altered scene) and the description of an altered scene.
    The other half pair a generated image with a :func:`caption` of it, so the model also
    sees the generator's images as positives; their hard negatives are a render and a
    description of an altered caption. Images score against all 2B texts and vice versa.
    """
    rng = np.random.default_rng(seed)
    k = data.images_per_prompt
    index = palette_index(data.images)
    captions = [caption(image, rng) for image in data.images]
    captioned = np.array([i for i, spec in enumerate(captions) if spec is not None])
    passing = [[p * k + j for j in range(k) if data.checker[p, j] == 1.0] for p in range(len(data.records))]
    failing = [[p * k + j for j in range(k) if data.checker[p, j] < 1.0] for p in range(len(data.records))]
    targets = torch.arange(batch)
    while True:
        examples = []
        while len(examples) < batch:  # an example whose render found no layout is drawn again
            if rng.random() < 0.5:
                p = rng.integers(len(data.records))
                example = _prompt_example(data.records[p], index, passing[p], failing[p], rng)
            else:
                i = rng.choice(captioned)
                example = _caption_example(captions[i], index[i], rng)
            if example is not None:
                examples.append(example)
        images = np.stack([e[0] for e in examples] + [e[1] for e in examples])
        texts = [e[2] for e in examples] + [e[3] for e in examples]
        image_features = model.encode_image(preprocess(images, model.visual.preprocess_cfg), normalize=True)
        text_features = model.encode_text(tokenizer(texts), normalize=True)
        scale = model.logit_scale.exp()
        per_image = scale * image_features[:batch] @ text_features.T
        per_text = scale * text_features[:batch] @ image_features.T
        yield (F.cross_entropy(per_image, targets) + F.cross_entropy(per_text, targets)) / 2


def _prompt_example(record, index: np.ndarray, passing: list[int], failing: list[int], rng: np.random.Generator):
    """(positive image, hard-negative image, prompt, hard-negative text), augmented alike; or ``None``."""
    altered = alter(record.spec, rng).spec  # compbench scenes always have a drawable alteration
    positive = index[rng.choice(passing)] if passing and rng.random() < 0.5 else _drawn(record.spec, rng)
    negative = index[rng.choice(failing)] if failing else _drawn(altered, rng)
    if positive is None or negative is None:
        return None
    return _augmented(positive, negative, record.text, describe(altered, rng), [record.spec, altered], rng)


def _caption_example(spec: SceneSpec, index: np.ndarray, rng: np.random.Generator):
    """(generated image, render of an altered caption, caption, altered caption), augmented alike; or ``None``."""
    try:
        altered = alter(spec, rng).spec
    except ValueError:  # a crowded caption may have no alteration the renderer can draw
        return None
    negative = _drawn(altered, rng)
    if negative is None:
        return None
    return _augmented(index, negative, describe(spec, rng), describe(altered, rng), [spec, altered], rng)


def _drawn(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray | None:
    """A render's palette indices, or ``None`` when the renderer finds no layout (crowded scenes)."""
    try:
        return palette_index(render(spec, rng)[None])[0]
    except ValueError:
        return None


def _augmented(
    positive: np.ndarray, negative: np.ndarray, text: str, wrong: str, specs: Sequence[SceneSpec], rng: np.random.Generator
):
    perm, flip = draw_augmentation(rng, specs)
    positive, text = apply_augmentation(positive, text, perm, flip)
    negative, wrong = apply_augmentation(negative, wrong, perm, flip)
    return positive, negative, text, wrong


# -- main ----------------------------------------------------------------------------------------
#: Optimizer steps per model unless --steps says otherwise.
STEPS = {"clip": 1500, "pref": 6000, "pref-narrow": 6000, "orm": 5000}
#: The network of each learned model (``orm`` counts with SumAttention blocks; see ScorerNet).
SCORERS = {"pref": ScorerConfig(), "pref-narrow": ScorerConfig(), "orm": ScorerConfig(counting=True)}
#: The fraction of counterfactuals that are another prompt's image rather than an edit.
FOREIGN = 0.25
#: Counterfactuals drawn (and checked) per generated image.
COUNTERFACTUALS_PER_IMAGE = 4
#: Models trained on that checked pool, wrong scenes included. ``pref-narrow`` keeps the first
#: recipe, a fresh edit of each image at every step and no wrong scenes: narrow in its prompts
#: and in its counterfactuals, it is the variant that generalizes less.
POOLED = ("pref", "orm")
LEARNING_RATES = {"clip": 1e-3, "pref": 2e-3, "pref-narrow": 2e-3, "orm": 2e-3}


def train_learned(
    model: str, data: RankingSet, extra: Counterfactuals | None, args: argparse.Namespace, steps: int
) -> LearnedReward:
    """Train ``pref``, ``pref-narrow`` or ``orm`` and write it; returns the reward."""
    kind = "orm" if model == "orm" else "pref"
    torch.manual_seed(args.seed)
    net = ScorerNet(SCORERS[model]).to(args.device)
    keep = prompt_set(model, data.records, args.seed)
    if kind == "pref":
        groups = max(1, args.batch // (2 * data.images_per_prompt))  # a group: a prompt's images and their edits
        losses = pref_losses(net, data, extra if model in POOLED else None, keep, groups, args.seed)
    else:
        losses = orm_losses(net, data, extra, keep, args.batch, args.seed)
    optimize(net.parameters(), losses, steps, LEARNING_RATES[model], args.log_every, model)
    net.cpu()
    save_net(net, output_path(args.out_dir, model), kind=kind, recipe=recipe(model, data, args, steps, keep))
    return LearnedReward(net, kind, model)


def train_clip(data: RankingSet, args: argparse.Namespace, steps: int) -> OpenCLIPReward:
    """Train the shapes CLIP and write it; returns the reward."""
    torch.manual_seed(args.seed)
    tokenizer = CompactTokenizer.for_texts(list(VOCABULARY), shapes_clip_config()["text_cfg"]["context_length"])
    model = build_shapes_clip(tokenizer)
    losses = clip_losses(model, tokenizer, data, args.batch, args.seed)
    optimize(model.parameters(), losses, steps, LEARNING_RATES["clip"], args.log_every, "clip")
    save_shapes_clip(model, tokenizer, output_path(args.out_dir, "clip"), recipe=recipe("clip", data, args, steps, prompt_set("clip", data.records, args.seed)))
    return OpenCLIPReward(model, tokenizer, "clip")


def recipe(model: str, data: RankingSet, args: argparse.Namespace, steps: int, keep: Callable[[PromptRecord], bool]) -> dict:
    """What a model was trained on, stored in its weights file's metadata."""
    return {
        "script": "scripts/train_rewards.py",
        "suite": "shapes/compbench-train",
        "prompts": len(data.records),
        "prompts_used": int(sum(map(keep, data.records))),  # the prompt set the model trained on
        "prompt_set": f"{NARROW_PROMPTS} prompts, stratified" if model == "pref-narrow" else "all",
        "images_per_prompt": data.images_per_prompt,
        "steps": steps,
        "batch": args.batch,
        "lr": LEARNING_RATES[model],
        "seed": args.seed,
        **({"counterfactuals_per_image": COUNTERFACTUALS_PER_IMAGE, "foreign": FOREIGN} if model in POOLED else {}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"any of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--prompts", type=parse_count, default=None, help="compbench-train prompts (default: all 7,000)")
    parser.add_argument("--images-per-prompt", type=parse_count, default=8)
    parser.add_argument("--steps", type=parse_count, default=None, help=f"optimizer steps (default per model: {STEPS})")
    parser.add_argument("--batch", type=parse_count, default=64,
                        help="images per step (pref, pref-narrow: a multiple of 2 x --images-per-prompt, whole groups); clip: examples")
    parser.add_argument("--eval-prompts", type=parse_count, default=300, help="prompts per suite for the final accuracy")
    parser.add_argument("--data", type=_npz_path, default=None, help="an .npz to reuse the generated set from or save it to")
    parser.add_argument("--device", type=parse_device, default="cpu", help="torch device of pref, pref-narrow and orm (e.g. cuda)")
    parser.add_argument("--workers", type=parse_count, default=os.cpu_count(), help="processes checking counterfactuals")
    parser.add_argument("--threads", type=parse_count, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--log-every", type=parse_count, default=250)
    parser.add_argument("--seed", type=parse_seed, default=0)
    parser.add_argument("--out-dir", type=parse_path, default=ASSETS)
    parser.add_argument("--force", action="store_true", help="overwrite existing weights")
    args = parser.parse_args(argv)
    args.models = args.models or list(MODELS)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    for model in args.models:  # every check before the set is generated (minutes) and any file is written
        try:
            check_output_file(output_path(args.out_dir, model), args.force)
        except ValueError as error:
            parser.error(f"--out-dir: {error}")
    if args.images_per_prompt < 2:
        parser.error(f"--images-per-prompt {args.images_per_prompt} must be >= 2 (a pair needs two images of one prompt)")
    group = 2 * args.images_per_prompt  # a preference step trains on whole groups: a prompt's images and their edits
    if set(args.models) & {"pref", "pref-narrow"} and args.batch % group:
        parser.error(f"--batch {args.batch} must be a multiple of 2 x --images-per-prompt = {group} for pref models")
    if args.data is not None and not args.data.parent.is_dir():
        parser.error(f"--data {args.data}: its directory {args.data.parent} does not exist")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    data = training_set(args.prompts, args.images_per_prompt, args.seed, args.data)
    print(f"training set: {len(data.records)} prompts x {data.images_per_prompt} images, "
          f"{(data.checker == 1).mean():.1%} pass, {time.perf_counter() - start:.0f}s", flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    extra = None
    if set(args.models) & set(POOLED):
        extra = Counterfactuals.build(data, COUNTERFACTUALS_PER_IMAGE, args.seed, args.workers)
        print(f"counterfactuals: {extra.checker.size}, {time.perf_counter() - start:.0f}s", flush=True)
    trained = []
    for model in args.models:
        steps = args.steps if args.steps is not None else STEPS[model]
        rm = train_clip(data, args, steps) if model == "clip" else train_learned(model, data, extra, args, steps)
        trained.append(generalization(rm, prompts_per_suite=args.eval_prompts, seed=args.seed))
        print(f"wrote {output_path(args.out_dir, model)}", flush=True)
    print(table(trained))
    print(f"total {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
