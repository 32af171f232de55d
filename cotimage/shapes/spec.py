"""Scene specifications: what a prompt asks for, as data.

A scene is a tuple of object groups (a shape, an optional colour and size, a count)
and a tuple of 2D relations between single objects. Each group names a different
shape, so a detected object belongs to exactly one group; this keeps the checker's
matching exact, as GenEval's two-object prompts name two different classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

#: Named colours and the RGB value the renderer paints them with. Far apart in RGB so a
#: blurred or noisy pixel still lands nearest to its own colour.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 40),
    "green": (30, 190, 50),
    "blue": (40, 80, 250),
    "yellow": (250, 230, 40),
    "purple": (150, 40, 210),
    "orange": (255, 140, 0),
    "white": (245, 245, 245),
}
BACKGROUND: tuple[int, int, int] = (0, 0, 0)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
#: Size name -> side length in pixels. Both are whole 4 px token patches (see render.py).
SIZES: dict[str, int] = {"small": 8, "large": 12}
#: Relations read "subject RELATION object", judged on object centres (see checker.py).
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
OPPOSITE_RELATION: dict[str, str] = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
}
MAX_COUNT = 4


def _require(field_name: str, value: Any, allowed) -> None:
    if value not in allowed:
        choices = sorted(allowed, key=lambda v: (v is None, v))  # None (colour/size "any") sorts last
        raise ValueError(f"{field_name}={value!r} is not allowed; choose one of {choices}")


def as_rng(value: int | np.random.Generator | None, name: str) -> np.random.Generator:
    """``np.random.default_rng(value)``; a bad seed raises a ValueError naming the argument ``name``."""
    allowed = "None, an int >= 0, a sequence of them or a numpy Generator"
    if isinstance(value, (bool, np.bool_)):  # numpy would read True as 1
        raise ValueError(f"{name}={value!r} must be {allowed}")
    try:
        return np.random.default_rng(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}={value!r} must be {allowed} ({error})") from None


def _as_int(field_name: str, value: Any, allowed: str) -> int:
    """``value`` as an int; numpy integers count as ints, bools and floats do not."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field_name}={value!r} must be {allowed}")
    return int(value)


@dataclass(frozen=True)
class ObjectSpec:
    """A group of identical objects, e.g. "two small red circles".

    Attributes:
        shape: One of :data:`SHAPES`.
        color: One of :data:`COLORS`, or ``None`` for "any colour".
        size: One of :data:`SIZES`, or ``None`` for "any size".
        count: How many such objects, 1 to :data:`MAX_COUNT`.
    """

    shape: str
    color: str | None = None
    size: str | None = None
    count: int = 1

    def __post_init__(self) -> None:
        _require("shape", self.shape, SHAPES)
        _require("color", self.color, [*COLORS, None])
        _require("size", self.size, [*SIZES, None])
        object.__setattr__(self, "count", _as_int("count", self.count, f"an int in 1..{MAX_COUNT}"))
        _require("count", self.count, range(1, MAX_COUNT + 1))


@dataclass(frozen=True)
class Relation:
    """``objects[subject]`` is ``relation`` ``objects[object]``, e.g. 0 "left of" 1."""

    subject: int
    relation: str
    object: int

    def __post_init__(self) -> None:
        _require("relation", self.relation, RELATIONS)
        for name in ("subject", "object"):
            index = _as_int(f"relation.{name}", getattr(self, name), "an int (an index into objects)")
            object.__setattr__(self, name, index)


def _has_cycle(edges: list[tuple[int, int]]) -> bool:
    """Whether the directed graph ``edges`` ("a comes before b") has a cycle, so no order satisfies it."""
    remaining = set(edges)
    while remaining:
        sinks = {b for _, b in remaining} - {a for a, _ in remaining}
        if not sinks:
            return True
        remaining = {(a, b) for a, b in remaining if b not in sinks}
    return False


@dataclass(frozen=True)
class SceneSpec:
    """What an image must show: object groups and relations between them.

    Raises:
        ValueError: if a field is out of range; the message names the field and the
            allowed values.
    """

    objects: tuple[ObjectSpec, ...]
    relations: tuple[Relation, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("objects", "relations"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise ValueError(f"{name} must be a list or tuple, got {getattr(self, name)!r}")
        object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "relations", tuple(self.relations))
        if not self.objects:
            raise ValueError("objects must hold at least one ObjectSpec")
        for obj in self.objects:
            if not isinstance(obj, ObjectSpec):
                raise ValueError(f"objects must hold ObjectSpec items, got {type(obj).__name__}")
        shapes = [obj.shape for obj in self.objects]
        if len(set(shapes)) != len(shapes):
            raise ValueError(f"objects must name different shapes, got {shapes}")
        pairs = set()
        for rel in self.relations:
            if not isinstance(rel, Relation):
                raise ValueError(f"relations must hold Relation items, got {type(rel).__name__}")
            for name in ("subject", "object"):
                index = getattr(rel, name)
                _require(f"relation.{name}", index, range(len(self.objects)))
                if self.objects[index].count != 1:
                    raise ValueError(f"relation.{name}={index} must point to a group with count 1")
            if rel.subject == rel.object:
                raise ValueError(f"relation.subject and relation.object must differ, got {rel.subject}")
            pair = frozenset((rel.subject, rel.object))
            if pair in pairs:
                raise ValueError(f"relations may relate a pair of objects once, got {sorted(pair)} twice")
            pairs.add(pair)
        for axis in (("left of", "right of"), ("above", "below")):
            if _has_cycle([(r.subject, r.object) if r.relation == axis[0] else (r.object, r.subject)
                           for r in self.relations if r.relation in axis]):
                raise ValueError(f"relations cannot all hold: their {' / '.join(axis)} order goes round in a circle, "
                                 f"{[(r.subject, r.relation, r.object) for r in self.relations]}")

    @property
    def num_objects(self) -> int:
        """Total number of objects to draw."""
        return sum(obj.count for obj in self.objects)

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "objects": [
                {"shape": o.shape, "color": o.color, "size": o.size, "count": o.count}
                for o in self.objects
            ],
            "relations": [[r.subject, r.relation, r.object] for r in self.relations],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SceneSpec:
        """Build a spec from :meth:`to_dict` output, validating every field."""
        if not isinstance(data, dict) or "objects" not in data:
            raise ValueError("spec must be a dict with keys 'objects' and optionally 'relations'")
        unknown = set(data) - {"objects", "relations"}
        if unknown:
            raise ValueError(f"spec has unknown keys {sorted(unknown)}; allowed: ['objects', 'relations']")
        for key in ("objects", "relations"):
            if not isinstance(data.get(key, []), (list, tuple)):
                raise ValueError(f"spec {key!r} must be a list, got {data[key]!r}")
        objects = []
        for item in data["objects"]:
            if not isinstance(item, dict):
                raise ValueError(f"object must be a dict with keys shape, color, size, count; got {item!r}")
            extra = set(item) - {"shape", "color", "size", "count"}
            if extra:
                raise ValueError(f"object has unknown keys {sorted(extra)}; allowed: shape, color, size, count")
            if "shape" not in item:
                raise ValueError("object must have a 'shape'")
            objects.append(ObjectSpec(**item))
        relations = []
        for rel in data.get("relations", []):
            if not isinstance(rel, (list, tuple)) or len(rel) != 3:
                raise ValueError(f"relation must be [subject, relation, object], got {rel!r}")
            relations.append(Relation(*rel))
        return cls(tuple(objects), tuple(relations))


#: The kinds of minimal alteration :func:`alterations` makes.
ALTERATION_KINDS: tuple[str, ...] = ("color", "shape", "count", "relation")


@dataclass(frozen=True)
class Alteration:
    """A minimal change to a scene spec: one attribute of one group, or one relation.

    Attributes:
        kind: One of :data:`ALTERATION_KINDS`.
        spec: The altered spec.
        change: What changed, for messages, e.g. ``"circle color red -> blue"``.
    """

    kind: str
    spec: SceneSpec
    change: str


def alterations(spec: SceneSpec) -> list[Alteration]:
    """Every minimal alteration of ``spec`` of the four kinds below that is a valid spec, in a fixed order.

    Sizes are not altered (a group's size is its own criterion, checked like a colour): the
    kinds and their order are what the shipped reward models' hard negatives were drawn from.

    An image that satisfies ``spec`` contradicts each of them, so a checker should reject
    it against any of them (tests and ``benchmarks/world.py`` measure that):

    - ``color``: a group that names a colour gets another colour;
    - ``shape``: a group gets a shape that no group of ``spec`` names;
    - ``count``: a group in no relation gets another count in 1..:data:`MAX_COUNT`;
    - ``relation``: a relation becomes its opposite (:data:`OPPOSITE_RELATION`). "left
      of" and "above" can hold together, so the opposite is the smallest change that
      surely contradicts the original.

    Some alterations may ask for a scene no layout can draw (too many objects);
    :func:`alter` leaves those out.
    """
    if not isinstance(spec, SceneSpec):
        raise ValueError(f"spec must be a SceneSpec, got {spec!r:.80} (cotimage.shapes.as_spec reads texts and dicts)")
    out: list[Alteration] = []
    objects = spec.objects
    used = {obj.shape for obj in objects}
    related = {i for rel in spec.relations for i in (rel.subject, rel.object)}

    def group(i: int, **changes: Any) -> SceneSpec:
        altered = list(objects)
        altered[i] = replace(objects[i], **changes)
        return SceneSpec(tuple(altered), spec.relations)

    for i, obj in enumerate(objects):
        if obj.color is not None:
            out += [
                Alteration("color", group(i, color=c), f"{obj.shape} color {obj.color} -> {c}")
                for c in COLORS
                if c != obj.color
            ]
    for i, obj in enumerate(objects):
        out += [
            Alteration("shape", group(i, shape=s), f"{obj.shape} shape -> {s}") for s in SHAPES if s not in used
        ]
    for i, obj in enumerate(objects):
        if i not in related:
            out += [
                Alteration("count", group(i, count=n), f"{obj.shape} count {obj.count} -> {n}")
                for n in range(1, MAX_COUNT + 1)
                if n != obj.count
            ]
    for k, rel in enumerate(spec.relations):
        flipped = list(spec.relations)
        flipped[k] = replace(rel, relation=OPPOSITE_RELATION[rel.relation])
        change = f"relation {rel.subject} {rel.relation} {rel.object} -> {flipped[k].relation}"
        out.append(Alteration("relation", SceneSpec(objects, tuple(flipped)), change))
    return out


def alter(spec: SceneSpec, rng: np.random.Generator | int | None = None) -> Alteration:
    """A random minimal alteration of ``spec`` (see :func:`alterations`) that can be drawn.

    Draws a kind uniformly among the kinds ``spec`` admits, then one alteration of that
    kind (another kind if none of that kind can be drawn). Count and relation
    alterations are kept only if the renderer lays them out (one attempt from a fixed
    seed, so the outcome depends on the spec alone); colour and shape alterations do not
    change what a layout needs.

    Raises:
        ValueError: if ``spec`` has no drawable alteration.
    """
    rng = as_rng(rng, "rng")
    by_kind: dict[str, list[Alteration]] = {}
    for alteration in alterations(spec):
        by_kind.setdefault(alteration.kind, []).append(alteration)
    kinds = list(by_kind)
    for k in rng.permutation(len(kinds)):
        candidates = by_kind[kinds[k]]
        for j in rng.permutation(len(candidates)):
            alteration = candidates[j]
            if alteration.kind in ("count", "relation") and not _drawable(alteration.spec):
                continue
            return alteration
    raise ValueError(f"spec has no drawable alteration: {spec}")


@lru_cache(maxsize=4096)
def _drawable(spec: SceneSpec) -> bool:
    """Whether the renderer lays ``spec`` out from a fixed seed (cached: a failed layout is slow)."""
    from cotimage.shapes.render import layout

    try:
        layout(spec, np.random.default_rng(0))
    except ValueError:
        return False
    return True
