"""Prompt suites: shipped, versioned JSONL files of prompts with their parsed scene specs.

>>> from cotimage import suites
>>> records = suites.load("shapes/geneval")
>>> records[0].text, records[0].category, records[0].split
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cotimage.shapes.spec import SceneSpec

DATA_DIR = Path(__file__).parent / "data"
SUITE_VERSION = 1

NAMES: tuple[str, ...] = ("shapes/compbench-train", "shapes/compbench-val", "shapes/geneval")


def suite_path(name: str) -> Path:
    """File of a suite, e.g. ``shapes/geneval`` -> ``data/shapes-geneval.v1.jsonl``."""
    return DATA_DIR / f"{name.replace('/', '-')}.v{SUITE_VERSION}.jsonl"


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of a suite.

    Attributes:
        text: The prompt.
        category: Its category within the suite (e.g. ``"spatial"``, ``"counting"``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        spec: The scene the prompt asks for.
    """

    text: str
    category: str
    split: str
    spec: SceneSpec


@cache
def _load(name: str) -> tuple[PromptRecord, ...]:
    with open(suite_path(name)) as f:
        rows = [json.loads(line) for line in f]
    return tuple(PromptRecord(r["text"], r["category"], r["split"], SceneSpec.from_dict(r["spec"])) for r in rows)


def load(name: str) -> list[PromptRecord]:
    """Load a suite by name.

    Raises:
        ValueError: if ``name`` is not a known suite; the message lists them.
    """
    if name not in NAMES:
        raise ValueError(f"suite={name!r} is unknown; known suites: {list(NAMES)}")
    return list(_load(name))


def categories(name: str) -> list[str]:
    """The categories of a suite, in file order."""
    return list(dict.fromkeys(r.category for r in load(name)))
