import numpy as np
import pytest

from cotimage.rewards import FunctionReward
from cotimage.suites import load

IMAGES = np.zeros((2, 32, 32, 3), np.uint8)
PROMPTS = ["a red circle", "two blue squares"]


def constant(value):
    return FunctionReward(lambda images, prompts: np.full(len(images), value), name="const")


@pytest.mark.parametrize(
    "images, problem",
    [
        (IMAGES.astype(np.float32), "float32"),
        (IMAGES[0], "(32, 32, 3)"),
        (IMAGES[..., :1], "(2, 32, 32, 1)"),
        (IMAGES[:, :0], "(2, 0, 32, 3)"),
    ],
    ids=["dtype", "ndim", "channels", "empty-image"],
)
def test_bad_images_name_the_reward_and_the_problem(images, problem):
    with pytest.raises(ValueError, match=r"reward 'const': images must be uint8 \(B, H, W, 3\)") as error:
        constant(1.0)(images, PROMPTS[: len(images)])
    assert problem in str(error.value)


def test_mismatched_prompts_name_the_reward():
    with pytest.raises(ValueError, match="reward 'const': expected 2 prompts .* got 1 prompts"):
        constant(1.0)(IMAGES, PROMPTS[:1])
    with pytest.raises(ValueError, match="reward 'const': expected 2 prompts .* got a string"):
        constant(1.0)(IMAGES, "a red circle")
    with pytest.raises(ValueError, match="reward 'const': expected 2 prompts .* got NoneType"):
        constant(1.0)(IMAGES, None)


def test_an_empty_batch_gets_no_scores():
    scores, details = constant(1.0).score_with_details(IMAGES[:0], [])
    assert scores.dtype == np.float32 and scores.shape == (0,) and details == []


def test_bad_scores_name_the_reward():
    with pytest.raises(ValueError, match="reward 'const' returned non-finite scores"):
        constant(np.nan)(IMAGES, PROMPTS)
    with pytest.raises(ValueError, match=r"reward 'short' returned shape \(1,\), expected \(2,\)"):
        FunctionReward(lambda images, prompts: [1.0], name="short")(IMAGES, PROMPTS)


def test_scores_outside_the_documented_range_raise():
    rm = constant(2.0)
    rm.range = (0.0, 1.0)
    with pytest.raises(ValueError, match=r"reward 'const' returned scores in \[2.0, 2.0\], outside its range"):
        rm(IMAGES, PROMPTS)


def test_float32_rounding_at_the_range_bounds_is_no_error():
    rm = constant(np.float32(0.93) + np.float32(0.97))  # 1.9 as a float32 sum: 1.90000010 > 1.9
    rm.range = (0.0, 1.9)
    assert rm(IMAGES, PROMPTS)[0] > 1.9
    rm.range = (0.0, 1.89999)
    with pytest.raises(ValueError, match="outside its range"):
        rm(IMAGES, PROMPTS)


def test_scores_are_float32_one_per_image():
    scores = constant(1)(IMAGES, PROMPTS)
    assert scores.dtype == np.float32 and scores.shape == (2,)


def test_texts_reads_strings_and_records_and_names_the_reward():
    record = load("shapes/geneval")[0]
    assert constant(1).texts(["a red circle", record]) == ["a red circle", record.text]
    with pytest.raises(ValueError, match="reward 'const': prompts must be strings or suite records .* got int"):
        constant(1).texts([3])
