import re

import gymnasium as gym
import numpy as np
import pytest

import cotimage  # noqa: F401  (registers CotImage-v0)
from cotimage import rewards
from cotimage.rewards import SHIPPED, FunctionReward, RewardModel
from cotimage.shapes import render
from cotimage.suites import load

PROMPT = "a red circle to the left of a blue square"
SPECS = [*SHIPPED, "scene+0.5*clip", "0.5*pref+orm"]


def test_the_registry_lists_shipped_rewards_and_loaders():
    assert set(SHIPPED) | {"clipscore", "hpsv2", "pickscore"} <= set(rewards.names())


def test_unknown_specs_list_the_registry():
    with pytest.raises(ValueError, match=r"reward='nope' is unknown; registered rewards: \[.*'pref-narrow'"):
        rewards.make("nope")
    with pytest.raises(ValueError, match="reward=3 is unknown"):
        rewards.make(3)


def test_register_extends_the_registry_and_guards_names(registry):
    registry.register("ones", lambda: FunctionReward(lambda i, p: np.ones(len(i)), "ones"))
    assert registry.make("ones")(render(PROMPT, seed=0)[None], [PROMPT])[0] == 1.0
    assert registry.make("ones+scene").name == "ones+scene"
    with pytest.raises(ValueError, match="'ones' is already registered"):
        registry.register("ones", lambda: None)
    with pytest.raises(ValueError, match=r"reward name 'a\+b' must be letters"):
        registry.register("a+b", lambda: None)
    with pytest.raises(ValueError, match=r"reward 'bad': factory=3 must be callable"):
        registry.register("bad", 3)


def test_a_factory_may_return_a_plain_callable_which_gets_checked(registry):
    registry.register("bright", lambda: lambda images, prompts: images.mean(axis=(1, 2, 3)) / 255)
    rm = registry.make("bright")
    assert isinstance(rm, FunctionReward) and rm.name == "bright"
    with pytest.raises(ValueError, match="reward 'bright': images must be uint8"):
        rm(np.zeros((1, 8, 8, 3), np.float32), [PROMPT])
    assert registry.make("bright+scene")(render(PROMPT, seed=0)[None], [PROMPT]).shape == (1,)
    registry.register("number", lambda: 3)
    with pytest.raises(ValueError, match="reward 'number': its factory returned 3, not a RewardModel"):
        registry.make("number")


def test_one_instance_registered_under_two_names_keeps_each_name(registry):
    shared = FunctionReward(lambda images, prompts: np.ones(len(images)), name="shared")
    registry.register("first", lambda: shared)
    registry.register("second", lambda: shared)
    assert (registry.make("first").name, registry.make("second").name, shared.name) == ("first", "second", "shared")


def test_make_passes_models_through_and_wraps_callables():
    rm = rewards.make("scene")
    assert rewards.make(rm) is rm
    wrapped = rewards.make(lambda images, prompts: np.zeros(len(images)))
    assert isinstance(wrapped, FunctionReward) and wrapped.name == "<lambda>"


def test_an_argument_the_factory_does_not_take_is_named():
    with pytest.raises(ValueError, match="reward 'scene-strict': got an unexpected keyword argument 'batch_size'"):
        rewards.make("scene-strict", batch_size=8)
    with pytest.raises(ValueError, match="reward 'clip': got an unexpected keyword argument 'bogus'"):
        rewards.make("clip", bogus=1)  # a lazily imported loader: checked against what it builds
    with pytest.raises(ValueError, match="reward='nope' is unknown"):
        rewards.weights_digest("nope")


def test_make_rejects_a_class_and_arguments_it_would_ignore():
    with pytest.raises(ValueError, match=r"reward=FunctionReward is a class; pass an instance"):
        rewards.make(FunctionReward)
    with pytest.raises(ValueError, match=r"keyword arguments \['batch_size'\] would be ignored"):
        rewards.make(rewards.make("scene"), batch_size=8)


def test_a_registered_reward_is_named_by_its_spec(registry):
    class Unnamed(RewardModel):
        def score(self, images, prompts):
            return np.ones(len(images), np.float32)

    registry.register("unnamed", Unnamed)
    registry.register("unnamed-too", Unnamed)
    rm = registry.make("unnamed+unnamed-too")
    assert [term.name for _, term in rm.terms] == ["unnamed", "unnamed-too"]
    _, details = rm.score_with_details(render(PROMPT, seed=0)[None], [PROMPT])
    assert details[0] == {"unnamed": 1.0, "unnamed-too": 1.0}


@pytest.mark.parametrize("spec", ["pref", "clip"])
@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_bad_batch_size_is_named(spec, batch_size):
    with pytest.raises(ValueError, match=f"reward '{spec}': batch_size={batch_size} must be a positive int"):
        rewards.make(spec, batch_size=batch_size)


def test_scene_errors_name_the_reward():
    image = render(PROMPT, seed=0)[None]
    with pytest.raises(ValueError, match="reward 'scene': expected a SceneSpec"):
        rewards.make("scene")(image, [3])
    with pytest.raises(ValueError, match="reward 'scene-strict': prompt has the unknown word 'cat'"):
        rewards.make("scene-strict")(image, ["a photo of a cat"])


@pytest.mark.parametrize("spec", SPECS)
def test_shipped_specs_follow_the_contract(spec):
    rm = rewards.make(spec)
    assert isinstance(rm, RewardModel) and rm.name == spec
    records = load("shapes/compbench-val")[:3]
    images = np.stack([render(r.spec, seed=i) for i, r in enumerate(records)])
    prompts = [records[0], records[1].text, records[2]]  # records and strings alike
    scores = rm(images, prompts)
    assert scores.dtype == np.float32 and scores.shape == (3,)
    assert (rm.range[0] <= scores).all() and (scores <= rm.range[1]).all()
    np.testing.assert_array_equal(scores, rewards.make(spec)(images, prompts))  # deterministic, fresh instance
    with pytest.raises(ValueError, match=re.escape(f"reward {spec!r}: expected 3 prompts")):
        rm(images, prompts[:2])


@pytest.mark.parametrize("spec", [*SPECS, lambda images, prompts: np.full(len(images), 0.25)],
                         ids=[*SPECS, "callable"])
def test_every_shipped_spec_and_a_callable_drive_the_env(spec):
    env = gym.make("CotImage-v0", reward=spec)
    env.reset(seed=0, options={"prompt": PROMPT})
    for action in np.random.default_rng(0).integers(256, size=64):
        _, reward, terminated, _, info = env.step(action)
    assert terminated and reward == info["score"]
    if callable(spec):
        assert reward == 0.25


def test_weights_digest_names_each_shipped_weights_file_and_follows_a_rewrite(tmp_path, monkeypatch):
    from cotimage.rewards import learned

    shipped = rewards.weights_digest("scene+0.5*pref")
    assert list(shipped) == ["pref"] and len(shipped["pref"]) == 16  # the checker has no weights
    assert rewards.weights_digest("scene") == {}
    monkeypatch.setattr(learned, "ASSETS", tmp_path)
    (tmp_path / "reward_pref.safetensors").write_bytes(b"retrained")
    assert rewards.weights_digest("pref")["pref"] != shipped["pref"]
    with pytest.raises(ValueError, match="term 'nope' is unknown"):
        rewards.weights_digest("scene+nope")


def test_bool_switches_take_bools_only(registry):
    registry.register("mine", lambda: rewards.make("scene"))
    with pytest.raises(ValueError, match="overwrite='no' must be True or False"):
        registry.register("mine", lambda: rewards.make("noise"), overwrite="no")
    assert rewards.make("mine").range == (0.0, 1.0)  # still the first registration
    with pytest.raises(ValueError, match="strict='no' must be True or False"):
        rewards.make("scene", strict="no")


def test_a_factory_that_returns_a_class_is_refused_when_made(registry):
    registry.register("a-class", lambda: rewards.SceneReward)
    with pytest.raises(ValueError, match="reward 'a-class': its factory returned <class .*SceneReward'>, not a RewardModel"):
        rewards.make("a-class")
