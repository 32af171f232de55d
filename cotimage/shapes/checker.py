"""A detector-style judge of images against scene specs, as GenEval judges real images.

First detect: label each pixel with its nearest palette colour (background included),
split each colour into connected components, drop specks, and classify each component's
shape by its best template IoU. Then score each criterion of the spec on the detections.
Nothing here assumes the image came from the renderer, so blurred, noisy or generated
images are judged the same way. Pixel thresholds are those of the renderer's 32 px canvas,
scaled to the image's size (Janus-Pro decodes 384 px images).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from cotimage.shapes.render import IMAGE_SIZE, relation_holds, shape_mask
from cotimage.shapes.spec import BACKGROUND, COLORS, SHAPES, SIZES

#: Bumped whenever a verdict can change; benchmarks keep it with each result, so results
#: judged by another version are never reused. 2: shapes keep their proportions (a bar is
#: no square, half a circle no circle); thresholds scale with the image.
CHECKER_VERSION = 2
#: Components smaller than this many pixels (on a 32 px image) are noise, not objects.
MIN_AREA = 12
#: A component whose best template IoU is below this is an unrecognised blob.
MIN_IOU = 0.6
#: Centres must differ by this many pixels (on a 32 px image) along the relation's axis for
#: it to hold; the other axis is not compared (GenEval also asks that axis to dominate).
RELATION_MARGIN = 3.0
_PALETTE = np.array([BACKGROUND, *COLORS.values()], np.float32)
_COLOR_NAMES = [None, *COLORS]
_SIZE_THRESHOLD = (min(SIZES.values()) + max(SIZES.values())) / 2


@dataclass(frozen=True)
class Detection:
    """An object found in an image. ``shape`` is ``None`` for an unrecognised blob."""

    shape: str | None
    color: str
    size: str
    center: tuple[float, float]
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    iou: float


@dataclass(frozen=True)
class Criterion:
    """One check of a verdict, e.g. ``name="count", target="circle", passed=False``."""

    name: str
    target: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The judgement of one image.

    Attributes:
        passed: Every criterion holds (GenEval's strict per-image correctness).
        score: Fraction of criteria that hold, in [0, 1].
        criteria: Each criterion with its outcome.
        detections: What the detector found.
    """

    passed: bool
    score: float
    criteria: tuple[Criterion, ...]
    detections: tuple[Detection, ...] = field(repr=False)

    def details(self) -> dict[str, bool]:
        """``{"circle/count": True, ...}``: per-criterion outcomes, for logs and ``info``."""
        return {f"{c.target}/{c.name}": c.passed for c in self.criteria}


#: ``shape_mask``, cached: one reward call classifies hundreds of components of a few sizes.
_template = functools.lru_cache(maxsize=1024)(shape_mask)


def _classify_shape(mask: np.ndarray) -> tuple[str | None, float]:
    """The best-matching shape of a component (``None`` below :data:`MIN_IOU`) and its IoU.

    Every shape fills a square box, so the component is centred in a square of its longer
    side and compared with each shape drawn at that side: its proportions count, and a bar,
    or half of a shape, matches nothing.
    """
    h, w = mask.shape
    side = max(h, w)
    boxed = np.zeros((side, side), bool)
    boxed[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = mask
    best, best_iou = None, 0.0
    for shape in SHAPES:
        template = _template(shape, side)
        iou = (template & boxed).sum() / (template | boxed).sum()
        if iou > best_iou:
            best, best_iou = shape, float(iou)
    return (best if best_iou >= MIN_IOU else None), best_iou


def _scale(image: np.ndarray) -> float:
    """Pixels of ``image`` per pixel of the renderer's canvas."""
    return min(image.shape[:2]) / IMAGE_SIZE


def detect(image: np.ndarray) -> list[Detection]:
    """Find the objects of an image: uint8 array (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"image must be a uint8 array (H, W, 3) with H, W >= 1, got {image.dtype} {image.shape}")
    scale = _scale(image)
    distances = ((image[:, :, None, :].astype(np.float32) - _PALETTE) ** 2).sum(-1)
    labels = distances.argmin(-1)
    detections = []
    for color_index in range(1, len(_PALETTE)):
        components, n = ndimage.label(labels == color_index)
        for k, slices in enumerate(ndimage.find_objects(components), start=1):
            mask = components[slices] == k
            if mask.sum() < MIN_AREA * scale**2:
                continue
            shape, iou = _classify_shape(mask)
            ys, xs = slices
            size = "large" if max(mask.shape) >= _SIZE_THRESHOLD * scale else "small"
            center = ((xs.start + xs.stop) / 2, (ys.start + ys.stop) / 2)
            bbox = (xs.start, ys.start, xs.stop, ys.stop)
            detections.append(Detection(shape, _COLOR_NAMES[color_index], size, center, bbox, iou))
    return detections


def check(image: np.ndarray, spec) -> Verdict:
    """Judge an image against a spec (or a prompt, spec dict or suite record).

    Criteria, per object group: ``present`` (a detection of its shape), ``count`` (exactly
    ``count`` of them), ``color`` and ``size`` when specified (every detection of the shape
    has them); per relation: some pair of matching detections whose centres satisfy it with
    :data:`RELATION_MARGIN` pixels (scaled to the image) to spare.
    """
    from cotimage.shapes.grammar import as_spec

    spec = as_spec(spec)
    detections = detect(image)
    margin = RELATION_MARGIN * _scale(np.asarray(image))
    criteria = []
    for obj in spec.objects:
        found = [d for d in detections if d.shape == obj.shape]
        criteria.append(Criterion("present", obj.shape, bool(found), f"{len(found)} found"))
        criteria.append(Criterion("count", obj.shape, len(found) == obj.count, f"{len(found)} of {obj.count}"))
        for attribute in ("color", "size"):
            wanted = getattr(obj, attribute)
            if wanted is not None:
                seen = sorted({getattr(d, attribute) for d in found})
                ok = bool(found) and seen == [wanted]
                criteria.append(Criterion(attribute, obj.shape, ok, f"want {wanted}, saw {seen}"))
    for rel in spec.relations:
        subjects = [d for d in detections if _matches(d, spec.objects[rel.subject])]
        objects = [d for d in detections if _matches(d, spec.objects[rel.object])]
        ok = any(
            relation_holds(rel.relation, s.center, o.center, margin) for s in subjects for o in objects
        )
        target = f"{spec.objects[rel.subject].shape} {rel.relation} {spec.objects[rel.object].shape}"
        criteria.append(Criterion("relation", target, ok, f"{len(subjects)}x{len(objects)} candidate pairs"))
    passed = sum(c.passed for c in criteria)
    return Verdict(passed == len(criteria), passed / len(criteria), tuple(criteria), tuple(detections))


def _matches(detection: Detection, obj) -> bool:
    return (
        detection.shape == obj.shape
        and obj.color in (None, detection.color)
        and obj.size in (None, detection.size)
    )
