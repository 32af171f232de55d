import numpy as np
import pytest

from cotimage import rewards
from cotimage.rewards import FunctionReward
from cotimage.rewards.ensemble import EnsembleReward, is_ensemble, parse
from cotimage.shapes import render

KNOWN = ["scene", "scene-strict", "clip", "pref-narrow"]
PROMPT = "a red circle to the left of a blue square"


@pytest.mark.parametrize(
    "spec, terms",
    [
        ("scene+0.5*clip", [(1.0, "scene"), (0.5, "clip")]),
        (" scene-strict + 2 * pref-narrow ", [(1.0, "scene-strict"), (2.0, "pref-narrow")]),
        ("scene+-0.1*clip", [(1.0, "scene"), (-0.1, "clip")]),
        ("1e-1*scene+.5*clip", [(0.1, "scene"), (0.5, "clip")]),
        ("3*scene", [(3.0, "scene")]),
        ("1e+1*scene+clip", [(10.0, "scene"), (1.0, "clip")]),  # a + inside a weight separates nothing
        ("scene++0.5*clip", [(1.0, "scene"), (0.5, "clip")]),
    ],
)
def test_parse(spec, terms):
    assert is_ensemble(spec)
    assert parse(spec, KNOWN) == terms


@pytest.mark.parametrize(
    "spec, message",
    [
        ("scene+0.5*nope", r"term 'nope' is unknown; registered rewards: \['clip', 'pref-narrow', 'scene'"),
        ("scene+", r"term '' is not NAME or WEIGHT\*NAME"),
        ("scene+0.5**clip", r"term '0.5\*\*clip' is not NAME or WEIGHT\*NAME"),
        ("scene+clip*0.5", r"term 'clip\*0.5' is not NAME or WEIGHT\*NAME"),
        ("scene+0*clip", "term 'clip' has weight 0"),
        ("scene+1e999*clip", "term 'clip' has weight inf; weights must be nonzero and finite in float32"),
        ("scene+1e39*clip", "term 'clip' has weight 1e\\+39; weights must be nonzero and finite in float32"),
        ("scene+0.5*scene", "term 'scene' appears twice"),
    ],
)
def test_parse_errors_quote_the_spec(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        parse(spec, KNOWN)
    assert f"reward spec {spec!r}" in str(error.value)


def test_an_ensemble_at_its_top_score_is_within_its_range():
    image = render(PROMPT, seed=0)[None]
    rm = rewards.make("0.93*scene+0.97*scene-strict")  # float32 sums past the float64 bound 1.9
    assert rm(image, [PROMPT])[0] == pytest.approx(1.9)


def test_make_unknown_term_names_the_registry():
    with pytest.raises(ValueError, match="term 'nope' is unknown; registered rewards: .*'scene-strict'"):
        rewards.make("scene+nope")


def test_ensemble_is_the_weighted_sum_with_per_term_details():
    images = np.stack([render(PROMPT, seed=0), render("a green circle to the left of a blue square", seed=0)])
    prompts = [PROMPT, PROMPT]
    rm = rewards.make("scene+-2*scene-strict")
    assert isinstance(rm, EnsembleReward) and rm.name == "scene+-2*scene-strict"
    scene, strict = rewards.make("scene")(images, prompts), rewards.make("scene-strict")(images, prompts)
    scores, details = rm.score_with_details(images, prompts)
    np.testing.assert_allclose(scores, scene - 2 * strict)
    assert details[1]["scene"] == scene[1] and details[1]["scene-strict"] == 0.0
    assert details[0]["scene/circle/color"] is True
    assert rm.range == (-2.0, 1.0)


def test_term_arguments_go_by_term_name(registry):
    registry.register("scaled", lambda scale=1.0: FunctionReward(lambda i, p: np.full(len(i), scale), "scaled"))
    rm = rewards.make("scene+scaled", scaled={"scale": 3.0})
    images = render(PROMPT, seed=0)[None]
    assert rm(images, [PROMPT])[0] == pytest.approx(4.0)
    with pytest.raises(ValueError, match=r"keyword arguments \['scale'\] name no term"):
        rewards.make("scene+scaled", scale=3.0)


def test_a_failing_term_is_named(registry):
    registry.register("broken", lambda: FunctionReward(lambda i, p: np.full(len(i), np.nan), "broken"))
    with pytest.raises(ValueError, match="reward 'broken' returned non-finite scores"):
        rewards.make("scene+broken")(render(PROMPT, seed=0)[None], [PROMPT])


def test_an_ensemble_whose_scores_could_overflow_float32_or_whose_term_arguments_are_no_dict_is_refused():
    with pytest.raises(ValueError, match=r"could reach \(0.0, 6e\+38\), beyond float32's range"):
        rewards.make("3e38*scene+3e38*scene-strict")
    with pytest.raises(ValueError, match=r"keyword arguments \['noise'\] must be dicts of a term's arguments"):
        rewards.make("scene+noise", noise=1)
