import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from cotimage import rewards
from cotimage.generators.shapes import WordTokenizer
from cotimage.rewards.learned import LearnedReward, ScorerConfig, ScorerNet, SumAttention, save_net
from cotimage.shapes import render
from cotimage.suites import load

SHORT, LONG = "a red circle", "a big red circle to the left of a small blue square and two green triangles"
TINY = ScorerConfig(d_model=16, conv_layers=1, layers=1, heads=2, ff=32)


@pytest.fixture(scope="module", params=[False, True], ids=["attention", "counting"])
def net(request):
    torch.manual_seed(0)
    return ScorerNet(replace(TINY, counting=request.param)).eval()


def test_sum_attention_counts_where_softmax_attention_averages():
    torch.manual_seed(0)
    block, text, patches = SumAttention(16, heads=2), torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    assert not block(text, patches).any()  # it starts adding nothing
    torch.nn.init.normal_(block.out.weight)
    bias = block.out.bias
    with torch.no_grad():
        once, twice = block(text, patches), block(text, torch.cat([patches, patches], 1))
        torch.testing.assert_close(twice - bias, 2 * (once - bias))  # each copy of a patch adds as much again
        attention = torch.nn.MultiheadAttention(16, 2, batch_first=True)
        torch.testing.assert_close(attention(text, patches, patches)[0],
                                   attention(text, *[torch.cat([patches, patches], 1)] * 2)[0])


def test_a_counting_net_has_its_blocks_and_an_old_config_has_none():
    assert len(ScorerNet(replace(TINY, counting=True, layers=2)).counters) == 2
    assert len(ScorerNet(TINY).counters) == 0 and ScorerConfig().counting is False  # files written before counting


def test_a_prompt_scores_the_same_alone_and_beside_a_longer_one(net):
    images = torch.from_numpy(np.stack([render(SHORT, seed=0), render(LONG, seed=0)]))
    encoded = WordTokenizer()([SHORT, LONG])
    with torch.no_grad():
        together = net(images, encoded.ids, encoded.mask)
        alone = net(images[:1], encoded.ids[:1], encoded.mask[:1])
    torch.testing.assert_close(together[:1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind, low, high", [("pref", -np.inf, np.inf), ("orm", 0.0, 1.0)])
def test_save_and_load_round_trip_in_fp16(net, tmp_path, kind, low, high):
    path = tmp_path / f"{kind}.safetensors"
    save_net(net, path, kind=kind, recipe={"steps": 1})
    rm = LearnedReward.load(path, name=f"my-{kind}")
    assert rm.range == (low, high) and rm.name == f"my-{kind}" and not rm.net.training
    images = np.stack([render(SHORT, seed=0), render(LONG, seed=1)])
    scores = rm(images, [SHORT, LONG])
    expected = LearnedReward(net, kind, "x")(images, [SHORT, LONG])
    np.testing.assert_allclose(scores, expected, atol=0.02)  # fp16 weights
    np.testing.assert_array_equal(scores, rm(images, [SHORT, LONG]))
    assert rewards.make("pref", weights=path).name == "pref"


def test_bad_inputs_name_the_reward(net):
    rm = LearnedReward(net, "pref", "mine")
    with pytest.raises(ValueError, match=r"reward 'mine': images must be 32 x 32, got \(64, 64\)"):
        rm(np.zeros((1, 64, 64, 3), np.uint8), [SHORT])
    with pytest.raises(ValueError, match="reward 'mine': prompt has 41 words, over the limit"):
        rm(np.zeros((1, 32, 32, 3), np.uint8), [" ".join(["circle"] * 41)])
    with pytest.raises(ValueError, match="kind='dpo' is not allowed; choose one of"):
        LearnedReward(net, "dpo", "mine")


def test_another_kind_of_file_is_named_not_a_learned_rewards(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    for path in (rewards.learned.ASSETS / "reward_clip.safetensors", tmp_path / "junk.safetensors"):
        with pytest.raises(ValueError, match="reward 'pref': .* is not a learned reward's weights file"):
            rewards.make("pref", weights=path)
    with pytest.raises(ValueError, match="reward 'clip': .* is not a shapes CLIP weights file"):
        rewards.make("clip", weights=rewards.learned.ASSETS / "reward_pref.safetensors")


def test_a_bfloat16_net_scores_uint8_images(net):
    images = np.stack([render(SHORT, seed=0), render(LONG, seed=1)])
    expected = LearnedReward(net, "pref", "x")(images, [SHORT, LONG])
    half = LearnedReward(copy.deepcopy(net).to(torch.bfloat16), "pref", "x")(images, [SHORT, LONG])
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, expected, atol=0.1)


def test_missing_weights_say_which_script_makes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="reward 'orm': no weights at .*run scripts/train_rewards.py orm"):
        rewards.make("orm", weights=tmp_path / "none.safetensors")


@pytest.mark.parametrize("name", ["pref", "pref-narrow", "orm"])
def test_shipped_learned_rewards_rank_generated_images_above_chance(name):
    rm = rewards.make(name)
    assert isinstance(rm, LearnedReward) and rm.name == name and not rm.net.training
    result = rewards.generalization(rm, suites=("shapes/compbench-val",), prompts_per_suite=40, seed=1)
    assert result.accuracy["shapes/compbench-val"].low > 0.5  # measured 0.77 / 0.73 / 0.66 on these 190 pairs


def test_pref_prefers_the_render_of_the_prompt_to_another_scene():
    records = load("shapes/compbench-val")[::30][:50]
    images = np.stack([render(r.spec, seed=3) for r in records])
    rm = rewards.make("pref")
    matched, mismatched = rm(images, records), rm(np.roll(images, 1, axis=0), records)
    assert (matched > mismatched).mean() >= 0.8  # measured 0.88 (0.80 before wrong-scene counterfactuals)
