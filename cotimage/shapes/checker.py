"""A detector-style judge of images against scene specs, as GenEval judges real images.

First detect: label each pixel with its nearest palette colour (background included),
split each colour into connected components, drop specks, and classify each component's
shape by its best template IoU. Then score each criterion of the spec on the detections.
Nothing here assumes the image came from the renderer, so blurred, noisy or generated
images are judged the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from cotimage.shapes.render import relation_holds, shape_mask
from cotimage.shapes.spec import BACKGROUND, COLORS, SHAPES, SIZES

#: Components smaller than this many pixels are noise, not objects.
MIN_AREA = 12
#: A component whose best template IoU is below this is an unrecognised blob.
MIN_IOU = 0.6
#: Centres must differ by this many pixels for a relation to hold (GenEval's margin).
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


@functools.lru_cache(maxsize=4096)
def _template(shape: str, h: int, w: int) -> np.ndarray:
    """The shape's mask cropped to its extent and resized to ``h x w`` (read-only).

    Cached: one reward call classifies hundreds of components of a few distinct sizes, and
    building the templates was a third of its time.
    """
    template = shape_mask(shape, max(h, w))
    rows, cols = np.nonzero(template.any(1))[0], np.nonzero(template.any(0))[0]
    template = template[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    yi = (np.arange(h) * template.shape[0] // h)[:, None]
    xi = (np.arange(w) * template.shape[1] // w)[None, :]
    template = template[yi, xi]
    template.setflags(write=False)
    return template


def _classify_shape(mask: np.ndarray) -> tuple[str | None, float]:
    best, best_iou = None, 0.0
    for shape in SHAPES:
        template = _template(shape, *mask.shape)
        iou = (template & mask).sum() / (template | mask).sum()
        if iou > best_iou:
            best, best_iou = shape, float(iou)
    return (best if best_iou >= MIN_IOU else None), best_iou


def detect(image: np.ndarray) -> list[Detection]:
    """Find the objects of an image: uint8 array (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    distances = ((image[:, :, None, :].astype(np.float32) - _PALETTE) ** 2).sum(-1)
    labels = distances.argmin(-1)
    detections = []
    for color_index in range(1, len(_PALETTE)):
        components, n = ndimage.label(labels == color_index)
        for k, slices in enumerate(ndimage.find_objects(components), start=1):
            mask = components[slices] == k
            if mask.sum() < MIN_AREA:
                continue
            shape, iou = _classify_shape(mask)
            ys, xs = slices
            size = "large" if max(mask.shape) >= _SIZE_THRESHOLD else "small"
            center = ((xs.start + xs.stop) / 2, (ys.start + ys.stop) / 2)
            bbox = (xs.start, ys.start, xs.stop, ys.stop)
            detections.append(Detection(shape, _COLOR_NAMES[color_index], size, center, bbox, iou))
    return detections


def check(image: np.ndarray, spec) -> Verdict:
    """Judge an image against a spec (or a prompt, spec dict or suite record).

    Criteria, per object group: ``present`` (a detection of its shape), ``count`` (exactly
    ``count`` of them), ``color`` and ``size`` when specified (every detection of the shape
    has them); per relation: some pair of matching detections whose centres satisfy it with
    :data:`RELATION_MARGIN` pixels to spare.
    """
    from cotimage.shapes.grammar import as_spec

    spec = as_spec(spec)
    detections = detect(image)
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
            relation_holds(rel.relation, s.center, o.center, RELATION_MARGIN) for s in subjects for o in objects
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
