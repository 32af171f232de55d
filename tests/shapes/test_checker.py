from collections import Counter

import numpy as np
import pytest
from scipy import ndimage

from cotimage import suites
from cotimage.shapes import COLORS, check, detect, parse, render
from cotimage.shapes.spec import ALTERATION_KINDS, alter

#: Cases per measured rate: the issue's bar.
N = 1000
#: Seeds of the fresh renders; the suite builder uses 1 to 3 and scripts/train_vq.py 0 and 1.
SEED = 1_000


def fresh_renders(records, n: int, rng: np.random.Generator):
    """``n`` (image, spec) pairs: records drawn at random, each rendered afresh."""
    picks = [records[i].spec for i in rng.integers(len(records), size=n)]
    return [(render(spec, rng), spec) for spec in picks]


def pass_rate(cases) -> float:
    return float(np.mean([check(image, spec).passed for image, spec in cases]))


@pytest.mark.parametrize("name", suites.NAMES)
def test_check_passes_fresh_renders_of_each_suite(name):
    cases = fresh_renders(suites.load(name), N, np.random.default_rng([SEED, suites.NAMES.index(name)]))
    assert pass_rate(cases) >= 0.995


def test_check_rejects_renders_against_minimally_altered_specs():
    records = [r for name in suites.NAMES for r in suites.load(name)]
    rng = np.random.default_rng([SEED, 10])
    kinds, accepted = Counter(), []
    for i in rng.integers(len(records), size=N):
        original = records[i].spec
        alteration = alter(original, rng)
        kinds[alteration.kind] += 1
        if check(render(original, rng), alteration.spec).passed:
            accepted.append(f"{records[i].text!r}: {alteration.change}")
    assert 1 - len(accepted) / N >= 0.99, accepted[:5]
    assert all(kinds[kind] >= N // 10 for kind in ALTERATION_KINDS), kinds  # every kind is measured


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 15.0) -> np.ndarray:
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).round().astype(np.uint8)


def blurred(image: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    return np.clip(ndimage.gaussian_filter(image.astype(float), (sigma, sigma, 0)), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def pooled_renders():
    records = [r for name in suites.NAMES for r in suites.load(name)]
    return fresh_renders(records, 500, np.random.default_rng([SEED, 20]))


def test_check_passes_most_noisy_renders(pooled_renders):
    # measured: 100% of 1,000 pooled renders with sigma 15 noise
    rng = np.random.default_rng([SEED, 21])
    assert pass_rate([(noisy(image, rng), spec) for image, spec in pooled_renders]) >= 0.95


def test_check_passes_most_mildly_blurred_renders(pooled_renders):
    # measured: 100% of 1,000 pooled renders with a sigma 0.5 px gaussian blur
    assert pass_rate([(blurred(image), spec) for image, spec in pooled_renders]) >= 0.95


def test_partly_wrong_image_fails_with_partial_score():
    spec = parse("a red circle to the left of a blue square")
    for seed in range(10):
        image = render(spec, seed)
        image[(image == COLORS["red"]).all(-1)] = COLORS["green"]
        verdict = check(image, spec)
        assert not verdict.passed
        assert 0 < verdict.score < 1
        assert not verdict.details()["circle/color"]
        assert verdict.details()["square/color"]


def test_all_background_image_scores_zero():
    verdict = check(np.zeros((32, 32, 3), np.uint8), "two red circles and a big square")
    assert verdict.score == 0 and not verdict.passed
    assert verdict.detections == ()


def test_verdict_details_has_one_key_per_criterion():
    spec = parse("a small red circle above a blue square and three crosses")
    verdict = check(render(spec, seed=0), spec)
    assert verdict.passed
    assert set(verdict.details()) == {
        "circle/present", "circle/count", "circle/color", "circle/size",
        "square/present", "square/count", "square/color",
        "cross/present", "cross/count",
        "circle above square/relation",
    }  # fmt: skip
    assert all(verdict.details().values())


def test_a_bar_or_half_a_shape_is_no_shape():
    red = COLORS["red"]
    bar = np.zeros((32, 32, 3), np.uint8)
    bar[0:4] = red  # 32 x 4: a stretched square template would match it perfectly
    assert not check(bar, "a large red square").passed
    assert [d.shape for d in detect(bar)] == [None]
    half = render("a large red circle", seed=0).copy()
    rows = np.nonzero((half == red).all(-1).any(1))[0]
    half[rows[0] + len(rows) // 2 :] = 0  # keep the top half of the circle
    assert [d.shape for d in detect(half)] == [None]


@pytest.mark.parametrize("factor", [3, 12])
def test_thresholds_follow_the_image_size(factor):
    spec = parse("a small red circle to the left of a large blue square")
    image = render(spec, seed=0).repeat(factor, 0).repeat(factor, 1)  # 96 or 384 px, as Janus-Pro decodes
    verdict = check(image, spec)
    assert verdict.passed, verdict.criteria


def test_detect_finds_each_rendered_object():
    spec = parse("a large red circle, a small blue square and a yellow triangle")
    found = {(d.shape, d.color, d.size) for d in detect(render(spec, seed=0))}
    assert {("circle", "red", "large"), ("square", "blue", "small")} <= found
    assert {shape for shape, *_ in found} == {"circle", "square", "triangle"}


def test_check_accepts_prompt_dict_and_record():
    record = suites.load("shapes/geneval")[0]
    image = render(record.spec, seed=0)
    verdicts = [check(image, x) for x in (record, record.text, record.spec.to_dict(), record.spec)]
    assert all(v == verdicts[0] for v in verdicts)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((32, 32, 3), np.float32),
        np.zeros((32, 32), np.uint8),
        np.zeros((32, 32, 4), np.uint8),
    ],
)
def test_bad_image_raises(image):
    with pytest.raises(ValueError, match="image must be a uint8 array"):
        check(image, "a circle")


def test_an_empty_image_is_named():
    with pytest.raises(ValueError, match=r"image must be a uint8 array \(H, W, 3\) with H, W >= 1, got uint8 \(0, 0, 3\)"):
        check(np.zeros((0, 0, 3), np.uint8), "a red circle")
