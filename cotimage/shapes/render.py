"""Render a scene spec (or a prompt) to a small RGB image.

Objects sit on a 4 px lattice and their sides are whole multiples of 4 px, so every
4 x 4 token patch of the VQ tokenizer holds part of at most one object, as a patch of a
real VQ tokenizer mostly holds part of one thing. Objects keep one empty patch between
each other, so the checker can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from cotimage.shapes.spec import BACKGROUND, COLORS, SHAPES, SIZES, SceneSpec, as_rng

IMAGE_SIZE = 32
LATTICE = 4
GAP = 4
#: A rendered relation holds with this many pixels between object centres; the checker
#: asks for less (checker.RELATION_MARGIN), so renders pass and the opposite relation fails.
RENDER_MARGIN = 8
_PLACEMENT_TRIES = 64
_LAYOUT_TRIES = 200


@cache
def shape_mask(shape: str, side: int) -> np.ndarray:
    """Boolean ``side x side`` mask of a shape, as drawn and as the checker's template."""
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r} is not allowed; choose one of {list(SHAPES)}")
    y, x = np.mgrid[0:side, 0:side] + 0.5
    c, half = side / 2, side / 2
    if shape == "square":
        mask = np.ones((side, side), bool)
    elif shape == "circle":
        mask = (x - c) ** 2 + (y - c) ** 2 <= half**2
    elif shape == "triangle":  # apex at the top centre, base along the bottom row
        mask = np.abs(x - c) <= half * (y + 0.5) / side
    elif shape == "diamond":
        mask = np.abs(x - c) + np.abs(y - c) <= half
    else:  # cross: two bars a third of the side wide
        mask = (np.abs(x - c) <= side / 6) | (np.abs(y - c) <= side / 6)
    mask.setflags(write=False)
    return mask


@dataclass(frozen=True)
class PlacedObject:
    """One object of a layout: its top-left corner and side in pixels."""

    shape: str
    color: str
    side: int
    x: int
    y: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.side / 2, self.y + self.side / 2


def relation_holds(relation: str, subject_xy, object_xy, margin: float) -> bool:
    """Whether ``subject relation object`` holds for two centres with a margin in pixels."""
    dx = object_xy[0] - subject_xy[0]
    dy = object_xy[1] - subject_xy[1]
    return {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[relation] >= margin


def _apart(a: PlacedObject, b: PlacedObject) -> bool:
    return (
        a.x + a.side + GAP <= b.x
        or b.x + b.side + GAP <= a.x
        or a.y + a.side + GAP <= b.y
        or b.y + b.side + GAP <= a.y
    )


def layout(spec: SceneSpec, rng: np.random.Generator) -> list[PlacedObject]:
    """A random placement of every object of ``spec`` that satisfies its relations.

    Raises:
        ValueError: if no layout fits the canvas (too many or too large objects).
    """
    for _ in range(_LAYOUT_TRIES):
        wanted = _draw_attributes(spec, rng)
        placed: list[PlacedObject] = []
        for _, shape, color, side in wanted:
            slots = (IMAGE_SIZE - side) // LATTICE + 1
            for _ in range(_PLACEMENT_TRIES):
                x, y = (rng.integers(slots, size=2) * LATTICE).tolist()
                candidate = PlacedObject(shape, color, side, x, y)
                if all(_apart(candidate, other) for other in placed):
                    placed.append(candidate)
                    break
            else:
                break
        if len(placed) == len(wanted) and _relations_hold(spec, wanted, placed):
            return placed
    raise ValueError(f"no layout of {spec.num_objects} objects fits a {IMAGE_SIZE} px canvas: {spec}")


def _draw_attributes(spec: SceneSpec, rng: np.random.Generator) -> list[tuple[int, str, str, int]]:
    """(group, shape, colour, side) per object; unspecified colours and sizes drawn at random.

    Crowded scenes (more than three objects) draw mostly small objects, so they fit.
    """
    colors = list(COLORS)
    p_large = 0.5 if spec.num_objects <= 3 else 0.2
    return [
        (g, obj.shape, obj.color or colors[rng.integers(len(colors))], SIZES[obj.size or _random_size(rng, p_large)])
        for g, obj in enumerate(spec.objects)
        for _ in range(obj.count)
    ]


def _random_size(rng: np.random.Generator, p_large: float) -> str:
    return "large" if rng.random() < p_large else "small"


def _relations_hold(spec, wanted, placed) -> bool:
    first = {}
    for (g, *_), obj in zip(wanted, placed):
        first.setdefault(g, obj)
    return all(
        relation_holds(r.relation, first[r.subject].center, first[r.object].center, RENDER_MARGIN)
        for r in spec.relations
    )


def rasterize(objects: list[PlacedObject]) -> np.ndarray:
    """Paint placed objects on the background: uint8 array (H, W, 3)."""
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    image[:] = BACKGROUND
    for obj in objects:
        window = image[obj.y : obj.y + obj.side, obj.x : obj.x + obj.side]
        window[shape_mask(obj.shape, obj.side)] = COLORS[obj.color]
    return image


def render(spec_or_prompt: SceneSpec | str, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Render a random valid layout of a spec or prompt.

    Args:
        spec_or_prompt: A :class:`SceneSpec` or a prompt the grammar parses.
        seed: Seed or generator for the layout and for unspecified colours and sizes.

    Returns:
        uint8 array of shape (32, 32, 3).

    Raises:
        ValueError: for a bad ``seed`` (named), a spec or prompt it cannot read, or a scene no layout fits.
    """
    from cotimage.shapes.grammar import as_spec

    return rasterize(layout(as_spec(spec_or_prompt), as_rng(seed, "seed")))
