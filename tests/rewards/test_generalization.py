import sys
from types import SimpleNamespace

import numpy as np
import pytest

from cotimage import rewards
from cotimage.rewards import generalization
from cotimage.rewards.generalization import (
    RankingSet,
    matching,
    pair_outcomes,
    ranking_set,
    stratified_prompts,
    table,
)
from cotimage.suites import load

generalization_module = sys.modules["cotimage.rewards.generalization"]  # the name is shadowed by the function

SMALL = dict(prompts_per_suite=12, images_per_prompt=3, seed=5)


def test_pair_outcomes_skip_checker_ties_and_halve_reward_ties():
    checker = np.array([[1.0, 0.5, 0.5], [0.2, 0.2, 0.2]])
    scores = np.array([[3.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(pair_outcomes(checker, scores), [[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(pair_outcomes(checker[:1], np.array([[0.0, 1.0, 0.0]])), [[0.5, 2.0]])


def test_pair_outcomes_by_kind_split_the_pairs():
    checker = np.array([[1.0, 0.5, 0.25]])  # pairs (1, .5) and (1, .25) have a pass; (.5, .25) both fail
    scores = np.array([[0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(pair_outcomes(checker, scores, "one passes"), [[0.0, 2.0]])
    np.testing.assert_array_equal(pair_outcomes(checker, scores, "both fail"), [[1.0, 1.0]])
    with pytest.raises(ValueError, match=r"kind='passes' is not allowed; choose None or one of \['one passes', 'both fail'\]"):
        pair_outcomes(checker, scores, "passes")


def test_stratified_prompts_spread_over_categories():
    records = load("shapes/geneval")
    picked = stratified_prompts(records, 12, np.random.default_rng(0))
    assert len(picked) == len({id(r) for r in picked}) == 12
    counts = {c: sum(r.category == c for r in picked) for c in {r.category for r in records}}
    assert set(counts.values()) == {2}
    assert stratified_prompts(records, None, np.random.default_rng(0)) == records


def test_ranking_set_is_seeded_and_aligned():
    data = ranking_set("shapes/geneval", **SMALL)
    again = RankingSet.build(data.records, 3, seed=5)
    np.testing.assert_array_equal(data.images, again.images)
    assert data.images.shape == (36, 32, 32, 3) and data.checker.shape == (12, 3)
    assert data.prompts[3] is data.records[1]
    with pytest.raises(ValueError, match="images_per_prompt=1 must be >= 2"):
        RankingSet.build(data.records, 1, seed=0)


def test_the_checker_ranks_perfectly_and_a_constant_at_chance():
    scene = generalization("scene", **SMALL)
    constant = generalization(lambda images, prompts: np.zeros(len(images)), **SMALL)
    for suite in ("shapes/compbench-val", "shapes/geneval"):
        assert scene.accuracy[suite].mean == 1.0 and scene.pairs[suite] > 0
        assert constant.accuracy[suite].mean == 0.5
        assert scene.pairs[suite] == constant.pairs[suite]
    noisy = generalization(lambda images, prompts: np.random.default_rng(0).random(len(images)), **SMALL)
    interval = noisy.accuracy["shapes/geneval"]
    assert interval.low <= interval.mean <= interval.high
    assert set(scene.categories["shapes/geneval"]) == {r.category for r in load("shapes/geneval")}
    assert "| scene | 1.000" in table([scene, constant])
    strict = generalization("scene-strict", **SMALL).pair_kinds["shapes/geneval"]
    assert strict["one passes"]["accuracy"] == 1.0 and strict["both fail"]["accuracy"] == 0.5
    assert strict["one passes"]["pairs"] + strict["both fail"]["pairs"] == scene.pairs["shapes/geneval"]
    assert "shapes/geneval, both fail" in table([scene], by_pair_kind=True)
    assert scene.to_dict()["accuracy"]["shapes/geneval"]["mean"] == 1.0


def test_matching_credits_the_checker_fully_and_a_constant_at_chance():
    scene = matching("scene", prompts=20, seed=2)
    assert scene.accuracy.mean == 1.0 and 0 < scene.pairs <= 20
    assert set(scene.categories) == {r.category for r in load("shapes/compbench-val")}
    assert matching(lambda images, prompts: np.zeros(len(images)), prompts=20, seed=2).accuracy.mean == 0.5
    backwards = matching(lambda images, prompts: -rewards.make("scene")(images, prompts), prompts=20, seed=2)
    assert backwards.accuracy.mean == 0.0 and backwards.to_dict()["accuracy"]["mean"] == 0.0


def test_a_lone_prompt_per_category_still_gets_an_interval():
    noisy = generalization(lambda images, prompts: np.random.default_rng(0).random(len(images)),
                           suites="shapes/geneval", prompts_per_suite=6, images_per_prompt=3, seed=5)
    interval = noisy.accuracy["shapes/geneval"]  # six categories, one prompt each: resampled across them
    assert interval.low < interval.mean < interval.high


def test_resamples_without_a_pair_leave_the_interval_finite():
    scene = generalization("scene", suites="shapes/geneval", prompts_per_suite=4, images_per_prompt=3, seed=5)
    interval = scene.accuracy["shapes/geneval"]  # most prompts have no pair: many resamples hold none
    assert interval.low == interval.mean == interval.high == 1.0


def test_one_suite_may_be_named_alone():
    result = generalization("scene", suites="shapes/geneval", **SMALL)
    assert list(result.accuracy) == ["shapes/geneval"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images_per_prompt": 2.5}, "images_per_prompt=2.5 must be an int >= 2"),
        ({"images_per_prompt": 1}, "images_per_prompt=1 must be an int >= 2"),
        ({"seed": -1}, r"seed=-1 must be an int in \[0"),
        ({"seed": True}, r"seed=True must be an int in \[0"),
        ({"suites": []}, r"suites=\[\] must be a suite name or a non-empty list"),
        ({"suites": ["shapes/geneval", "bogus"]}, "suite='bogus' is unknown"),  # before the first suite is sampled
    ],
)
def test_bad_arguments_are_named_before_any_sampling(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generalization("scene", **kwargs)


def test_matching_names_a_bad_seed():
    with pytest.raises(ValueError, match=r"seed=2.5 must be an int in \[0"):
        matching("scene", seed=2.5)


def test_too_few_prompts_are_named():
    with pytest.raises(ValueError, match=r"prompts_per_suite=0 must be None \(all\) or an int >= 1"):
        generalization("scene", prompts_per_suite=0)
    with pytest.raises(ValueError, match=r"prompts=1 must be None \(all\) or an int >= 2"):
        matching("scene", prompts=1)


def test_no_pairs_is_an_error_not_an_accuracy(monkeypatch):
    monkeypatch.setattr(generalization_module, "check", lambda image, spec: SimpleNamespace(score=1.0))
    with pytest.raises(ValueError, match="no pair on 'shapes/compbench-val' has two different checker scores"):
        matching("scene", prompts=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clip", "pref", "pref-narrow", "orm"])
def test_shipped_learned_rewards_rank_in_domain_pairs_well(name):
    result = generalization(rewards.make(name), suites=("shapes/compbench-val",), prompts_per_suite=150)
    assert result.accuracy["shapes/compbench-val"].mean >= 0.80


@pytest.mark.slow
def test_generalization_variants_differ_out_of_domain():
    diverse, narrow = (generalization(rewards.make(n), prompts_per_suite=500) for n in ("pref", "pref-narrow"))
    assert narrow.accuracy["shapes/geneval"].high < diverse.accuracy["shapes/geneval"].low  # measured 0.787 < 0.809
