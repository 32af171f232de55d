import numpy as np
import pytest

from cotimage.shapes import COLORS, IMAGE_SIZE, ObjectSpec, Relation, SceneSpec, parse, render
from cotimage.shapes.render import RENDER_MARGIN

PROMPT = "a red circle to the left of a blue square and two small crosses"


def test_render_returns_uint8_rgb_image():
    image = render(parse(PROMPT), seed=0)
    assert image.dtype == np.uint8
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_render_accepts_a_prompt():
    np.testing.assert_array_equal(render(PROMPT, seed=3), render(parse(PROMPT), seed=3))


def test_render_is_deterministic_under_a_seed():
    np.testing.assert_array_equal(render(PROMPT, seed=11), render(PROMPT, seed=11))
    np.testing.assert_array_equal(render(PROMPT, np.random.default_rng(5)), render(PROMPT, np.random.default_rng(5)))


def test_different_seeds_give_different_images():
    images = {render(PROMPT, seed=seed).tobytes() for seed in range(20)}
    assert len(images) >= 18


def test_render_paints_asked_colours_on_black():
    image = render(parse("a red circle and a blue square"), seed=0)
    colours = {tuple(int(v) for v in p) for p in image.reshape(-1, 3)}
    assert colours == {(0, 0, 0), COLORS["red"], COLORS["blue"]}


def centre(image: np.ndarray, color: str) -> tuple[float, float]:
    ys, xs = np.nonzero((image == COLORS[color]).all(-1))
    return (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2


@pytest.mark.parametrize("relation", ["left of", "right of", "above", "below"])
def test_rendered_layouts_satisfy_relations(relation):
    spec = SceneSpec((ObjectSpec("triangle", "red"), ObjectSpec("cross", "blue")), (Relation(0, relation, 1),))
    for seed in range(25):
        image = render(spec, seed)
        (sx, sy), (ox, oy) = centre(image, "red"), centre(image, "blue")
        gap = {"left of": ox - sx, "right of": sx - ox, "above": oy - sy, "below": sy - oy}[relation]
        assert gap >= RENDER_MARGIN, (seed, gap)


def test_impossible_scene_raises():
    # a large object is 12 px and objects keep 4 px apart: at most four fit a 32 px canvas
    spec = SceneSpec((ObjectSpec("circle", size="large", count=4), ObjectSpec("square", size="large")))
    with pytest.raises(ValueError, match="no layout"):
        render(spec, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_a_bad_seed_is_named(seed):
    with pytest.raises(ValueError, match=rf"^seed={seed!r} must be None, an int >= 0, a sequence of them or a numpy Generator"):
        render(PROMPT, seed=seed)
