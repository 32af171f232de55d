"""The embedded "shapes" world: scene specs, a prompt grammar, a renderer, a checker, a tokenizer.

>>> from cotimage.shapes import parse, render, check
>>> spec = parse("a red circle to the left of a blue square")
>>> check(render(spec, seed=0), spec).passed
True
"""

from cotimage.shapes.checker import CHECKER_VERSION, Criterion, Detection, Verdict, check, detect
from cotimage.shapes.grammar import as_spec, describe, parse
from cotimage.shapes.render import IMAGE_SIZE, render
from cotimage.shapes.spec import COLORS, RELATIONS, SHAPES, SIZES, ObjectSpec, Relation, SceneSpec
from cotimage.shapes.vq import PatchVQ

__all__ = [
    "CHECKER_VERSION", "COLORS", "IMAGE_SIZE", "RELATIONS", "SHAPES", "SIZES",
    "Criterion", "Detection", "ObjectSpec", "PatchVQ", "Relation", "SceneSpec", "Verdict",
    "as_spec", "check", "describe", "detect", "parse", "render",
]
