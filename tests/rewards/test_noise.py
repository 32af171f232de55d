import numpy as np
import pytest

from cotimage import rewards


def random_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_noise_is_a_fixed_uniform_score_per_image_that_ignores_the_prompt():
    rm = rewards.make("noise")
    images = random_images(2000)
    scores = rm(images, ["a red circle"] * 2000)
    assert scores.dtype == np.float32 and scores.min() >= 0 and scores.max() <= 1
    assert abs(scores.mean() - 0.5) < 0.02 and abs(scores.std() - 12**-0.5) < 0.02  # uniform on [0, 1]
    np.testing.assert_array_equal(rm(images[:5], ["two green triangles"] * 5), scores[:5])
    flipped = images[:1].copy()
    flipped[0, 0, 0, 0] ^= 1
    assert rm(flipped, ["x"])[0] != scores[0]


def test_noise_seed_gives_other_scores_and_is_checked():
    images = random_images(100)
    a, b = rewards.make("noise")(images, ["x"] * 100), rewards.make("noise", seed=1)(images, ["x"] * 100)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.3
    for bad in (-1, 2**64, 1.5):
        with pytest.raises(ValueError, match=rf"reward 'noise': seed={bad!r} must be an int in \[0, 2\*\*64\)"):
            rewards.make("noise", seed=bad)
    np.testing.assert_array_equal(rewards.make("noise", seed=np.int64(1))(images, ["x"] * 100), b)


def test_a_weighted_noise_term_gives_distinct_scores_within_its_weight():
    images = random_images(50)
    scores = rewards.make("0.5*noise")(images, ["x"] * 50)
    assert len(np.unique(scores)) == 50 and scores.max() <= 0.5
