import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from cotimage.stats import (
    improvement_bootstrap,
    iqm,
    mean_score,
    probability_of_improvement,
    runs_bootstrap,
    stratified_bootstrap,
)


def test_iqm_averages_the_middle_half_of_all_scores():
    assert iqm(np.array([[1, 2, 3, 4], [5, 6, 7, 8]])) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm(np.array([[1, 2, 3], [4, 5, 100]])) == pytest.approx((2 + 3 + 4 + 5) / 4)  # int(0.25 * 6) = 1 cut per end
    assert mean_score(np.array([[1, 2], [3, 6]])) == 3


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement(np.array([[1.0], [3.0]]), np.array([[2.0], [2.0]])) == 0.5  # 2 of 4 pairs
    assert probability_of_improvement(np.array([[2.0]]), np.array([[2.0]])) == 0.5  # a tie counts one half
    x = np.array([[3.0, 1.0], [4.0, 1.0]])
    y = np.array([[1.0, 1.0], [2.0, 2.0]])
    # task 1: x always wins (1); task 2: of (1,1) (1,2) (1,1) (1,2), two ties -> 1/4; mean 0.625
    assert probability_of_improvement(x, y) == pytest.approx(0.625)
    assert probability_of_improvement(y, x) == pytest.approx(0.375)


def test_probability_of_improvement_is_mann_whitney_u_over_pairs():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, (5, 3)).astype(float), rng.integers(0, 4, (4, 3)).astype(float)
    u = [mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / 20 for t in range(3)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u))


def test_runs_bootstrap_resamples_runs_within_each_task():
    scores = np.array([[0.0, 10.0], [1.0, 10.0]])
    first_task = runs_bootstrap(scores, lambda m: float(m[:, 0].mean()), np.random.default_rng(0), n=500)
    assert (first_task.mean, first_task.low, first_task.high) == (0.5, 0.0, 1.0)  # resamples of two runs: 0, 0.5, 1
    constant_task = runs_bootstrap(scores, lambda m: float(m[:, 1].mean()), np.random.default_rng(0), n=50)
    assert constant_task.low == constant_task.high == 10.0
    one_run = runs_bootstrap(scores[:1], iqm, np.random.default_rng(0), n=50)
    assert one_run.low == one_run.mean == one_run.high == 5.0


def test_improvement_bootstrap_brackets_the_point_estimate():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, (4, 3)), rng.normal(0, 1, (3, 3))
    interval = improvement_bootstrap(x, y, np.random.default_rng(0), n=300)
    assert interval.mean == probability_of_improvement(x, y)
    assert 0 <= interval.low <= interval.mean <= interval.high <= 1


def test_bad_score_matrices_raise():
    with pytest.raises(ValueError, match="runs, tasks"):
        runs_bootstrap(np.ones(3), iqm, np.random.default_rng(0))
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="y must be a non-empty"):
        probability_of_improvement(np.ones((2, 3)), np.ones(3))


def test_nan_or_empty_scores_are_refused_not_ranked():
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    for call in (lambda: probability_of_improvement(x, np.ones((2, 2))), lambda: iqm([1, 2, np.nan, 4]),
                 lambda: iqm([]), lambda: mean_score(np.zeros((0, 3)))):
        with pytest.raises(ValueError, match="must be non-empty and finite"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": True}, "n=True must be an int >= 1"), ({"n": 0}, "n=0 must be an int >= 1"),
     ({"rng": 0}, "rng=0 must be a numpy Generator"), ({"groups": []}, "groups must be a non-empty list")],
)
def test_stratified_bootstrap_names_bad_arguments(kwargs, message):
    arguments = {"groups": [np.ones(3)], "statistic": lambda g: float(np.mean(g[0])), "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=message):
        stratified_bootstrap(**arguments)
