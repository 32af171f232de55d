"""Write the shipped prompt suites (deterministic): ``python -m cotimage.suites.build [--force]``.

A suite file whose content would not change is left as it is. The files are versioned
(``*.v1.jsonl``) and results are measured on them, so one that would change is replaced only
with ``--force`` (a changed suite usually deserves a new ``SUITE_VERSION`` instead).

- ``shapes/compbench-train`` and ``shapes/compbench-val``: T2I-CompBench-like categories
  with varied phrasings. Neither uses a colour-shape composition of :data:`HELD_OUT`.
- ``shapes/geneval``: GenEval's six tasks with GenEval's fixed "a photo of ..." templates
  and GenEval's task sizes (553 prompts); its colour prompts draw from all compositions,
  held-out ones included, so part of it tests compositions never seen in training.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np

from cotimage.shapes.grammar import describe
from cotimage.shapes.render import layout
from cotimage.shapes.spec import COLORS, MAX_COUNT, RELATIONS, SHAPES, SIZES, ObjectSpec, Relation, SceneSpec
from cotimage.suites import suite_path

#: Colour-shape compositions that no compbench prompt names (9 of 35, about 26%).
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("green", "cross"),
        ("blue", "diamond"),
        ("yellow", "square"),
        ("purple", "circle"),
        ("orange", "triangle"),
        ("white", "diamond"),
        ("red", "cross"),
        ("green", "square"),
    }
)
COMPBENCH_SIZES = {"train": 1400, "val": 300}  # prompts per category
GENEVAL_SIZES = {
    "single_object": 80,
    "two_object": 99,
    "counting": 80,
    "colors": 94,
    "position": 100,
    "color_attr": 100,
}


def _pick(rng: np.random.Generator, items, n: int | None = None):
    if n is None:
        return items[rng.integers(len(items))]
    return [items[i] for i in rng.choice(len(items), n, replace=False)]


def _color(rng, shape: str, held_out_ok: bool) -> str:
    colors = [c for c in COLORS if held_out_ok or (c, shape) not in HELD_OUT]
    return _pick(rng, colors)


def _compbench_spec(category: str, rng: np.random.Generator) -> SceneSpec:
    colors = lambda shape: _color(rng, shape, held_out_ok=False)  # noqa: E731
    if category == "color":
        shapes = _pick(rng, SHAPES, 2 + (rng.random() < 0.25))
        return SceneSpec(tuple(ObjectSpec(s, colors(s)) for s in shapes))
    if category == "size":
        shapes = _pick(rng, SHAPES, 2)
        sizes = _pick(rng, list(SIZES), 2)
        return SceneSpec(tuple(ObjectSpec(s, size=z) for s, z in zip(shapes, sizes)))
    if category == "spatial":
        shapes = _pick(rng, SHAPES, 2)
        colored = rng.random() < 0.5
        objects = tuple(ObjectSpec(s, colors(s) if colored else None) for s in shapes)
        return SceneSpec(objects, (Relation(0, _pick(rng, RELATIONS), 1),))
    if category == "numeracy":
        shapes = _pick(rng, SHAPES, 1 + (rng.random() < 0.5))
        first = int(rng.integers(2, MAX_COUNT + 1))
        counts = [first] + [min(int(rng.integers(1, 3)), 5 - first) for _ in shapes[1:]]  # at most 5 objects
        return SceneSpec(
            tuple(ObjectSpec(s, colors(s) if rng.random() < 0.5 else None, count=n) for s, n in zip(shapes, counts))
        )
    if category == "complex":
        shapes = _pick(rng, SHAPES, 3)
        objects = [
            ObjectSpec(s, colors(s), _pick(rng, list(SIZES)) if rng.random() < 0.5 else None) for s in shapes[:2]
        ]
        objects.append(ObjectSpec(shapes[2], colors(shapes[2]), "small", count=int(rng.integers(1, 3))))
        return SceneSpec(tuple(objects), (Relation(0, _pick(rng, RELATIONS), 1),))
    raise ValueError(f"category={category!r} is not allowed; choose one of {COMPBENCH_CATEGORIES}")


def _geneval_spec(task: str, rng: np.random.Generator) -> SceneSpec:
    colors = lambda shape: _color(rng, shape, held_out_ok=True)  # noqa: E731
    if task == "single_object":
        return SceneSpec((ObjectSpec(_pick(rng, SHAPES)),))
    if task == "two_object":
        return SceneSpec(tuple(ObjectSpec(s) for s in _pick(rng, SHAPES, 2)))
    if task == "counting":
        return SceneSpec((ObjectSpec(_pick(rng, SHAPES), count=int(rng.integers(2, 5))),))
    if task == "colors":
        shape = _pick(rng, SHAPES)
        return SceneSpec((ObjectSpec(shape, colors(shape)),))
    if task == "position":
        return SceneSpec(tuple(ObjectSpec(s) for s in _pick(rng, SHAPES, 2)), (Relation(0, _pick(rng, RELATIONS), 1),))
    if task == "color_attr":
        return SceneSpec(tuple(ObjectSpec(s, colors(s)) for s in _pick(rng, SHAPES, 2)))
    raise ValueError(f"task={task!r} is not allowed; choose one of {list(GENEVAL_SIZES)}")


COMPBENCH_CATEGORIES = ["color", "size", "spatial", "numeracy", "complex"]


def _records(
    categories: dict[str, int], make_spec: Callable, style: str, split: str, rng, exclude: set[str] | None
) -> list[dict]:
    """``n`` prompts per category, distinct and not in ``exclude``; ``exclude=None`` allows repeats.

    GenEval's templates over five shapes cannot give GenEval's task sizes without repeats
    (there are five single-object prompts), so the geneval suite repeats prompts, as
    GenEval samples several images per prompt.
    """
    records = []
    for category, n in categories.items():
        texts: list[str] = []
        while len(texts) < n:
            spec = make_spec(category, rng)
            layout(spec, rng)  # every shipped prompt must be drawable
            text = describe(spec, rng, style)
            if exclude is not None and (text in texts or text in exclude):
                continue
            texts.append(text)
            records.append({"text": text, "category": category, "split": split, "spec": spec.to_dict()})
    return records


def build() -> dict[str, list[dict]]:
    """All suites as lists of JSON-ready records, from fixed seeds."""
    train = _records(
        dict.fromkeys(COMPBENCH_CATEGORIES, COMPBENCH_SIZES["train"]),
        _compbench_spec,
        "compbench",
        "train",
        np.random.default_rng(1),
        set(),
    )
    val = _records(
        dict.fromkeys(COMPBENCH_CATEGORIES, COMPBENCH_SIZES["val"]),
        _compbench_spec,
        "compbench",
        "val",
        np.random.default_rng(2),
        {r["text"] for r in train},
    )
    geneval = _records(GENEVAL_SIZES, _geneval_spec, "geneval", "test", np.random.default_rng(3), None)
    return {"shapes/compbench-train": train, "shapes/compbench-val": val, "shapes/geneval": geneval}


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def main(argv: list[str] | None = None) -> None:
    """Write every suite file whose content changes; refuse to replace one without ``--force``."""
    parser = argparse.ArgumentParser(
        prog="python -m cotimage.suites.build", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="replace suite files whose content would change")
    args = parser.parse_args(argv)
    texts = {name: _jsonl(records) for name, records in build().items()}
    saved = {name: suite_path(name).read_text() if suite_path(name).is_file() else None for name in texts}
    changed = [name for name, text in texts.items() if saved[name] not in (None, text)]
    if changed and not args.force:
        files = ", ".join(str(suite_path(name)) for name in changed)
        parser.error(f"{files} would change; pass --force to replace them (or bump SUITE_VERSION for a new suite)")
    for name, text in texts.items():
        path = suite_path(name)
        if saved[name] == text:
            print(f"{name}: {path} unchanged")
            continue
        path.write_text(text)
        print(f"{name}: {len(text.splitlines())} prompts -> {path}")


if __name__ == "__main__":
    main()
