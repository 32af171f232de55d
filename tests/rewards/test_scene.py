import numpy as np

from cotimage import rewards
from cotimage.shapes import render

PROMPT = "a red circle to the left of a blue square"


def test_scene_scores_the_fraction_and_strict_all_or_nothing():
    good = render(PROMPT, seed=0)
    bad = render("a green circle to the left of a blue square", seed=0)
    images = np.stack([good, bad])
    scores, details = rewards.make("scene").score_with_details(images, [PROMPT, PROMPT])
    assert scores[0] == 1.0 and 0.0 < scores[1] < 1.0
    assert details[0]["circle/color"] and not details[1]["circle/color"]
    np.testing.assert_array_equal(rewards.make("scene-strict")(images, [PROMPT, PROMPT]), [1.0, 0.0])
