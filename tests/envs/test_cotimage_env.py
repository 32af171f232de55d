import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import cotimage  # noqa: F401  (registers CotImage-v0)
from cotimage.envs import NOT_DRAWN, CotImageEnv

PROMPT = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def env():
    return CotImageEnv(render_mode="rgb_array")


def play(env, actions, **reset):
    obs, info = env.reset(**reset)
    trajectory = [(obs, info)]
    for action in actions:
        trajectory.append(env.step(action))
    return trajectory


@pytest.mark.parametrize("kwargs", [{}, {"process_reward_every": 2}], ids=["terminal", "process"])
def test_gymnasium_and_sb3_checkers_pass_without_warnings(kwargs):
    env = gym.make("CotImage-v0", render_mode="rgb_array", **kwargs).unwrapped  # a spec, for render checks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)
        sb3_check_env(env)


def test_make_with_and_without_prior_import():
    assert isinstance(gym.make("CotImage-v0").unwrapped, CotImageEnv)
    assert isinstance(gym.make("cotimage:CotImage-v0").unwrapped, CotImageEnv)


def test_spaces(env):
    assert env.action_space == gym.spaces.Discrete(256)
    space = env.observation_space
    assert set(space) == {"prompt", "image_tokens", "step"}
    assert all(np.issubdtype(s.dtype, np.integer) for s in space.values())
    assert space["image_tokens"].shape == (64,) and space["image_tokens"].low.min() == NOT_DRAWN


def test_episode_draws_one_image_and_rewards_at_the_end(env):
    actions = np.random.default_rng(0).integers(256, size=64)
    (obs, info), *steps = play(env, actions, seed=0, options={"prompt": PROMPT})
    assert info["prompt"] == PROMPT and (obs["image_tokens"] == NOT_DRAWN).all() and obs["step"][0] == 0
    rewards = [s[1] for s in steps]
    assert rewards[:-1] == [0.0] * 63
    last_obs, reward, terminated, truncated, last_info = steps[-1]
    assert terminated and not truncated and last_obs["step"][0] == 64
    np.testing.assert_array_equal(last_obs["image_tokens"], actions)
    assert last_info["image"].shape == (32, 32, 3) and last_info["prompt"] == PROMPT
    assert last_info["category"] == "custom" and reward == last_info["score"]
    assert "circle/color" in last_info["reward_details"]


def test_a_prompt_the_scene_rewards_cannot_check_fails_before_the_episode_not_at_its_end():
    unparsed = "a purple elephant"
    with pytest.raises(ValueError, match="reward 'scene' scores shapes scenes.*'a purple elephant': .*unknown word 'elephant'"):
        CotImageEnv(suite=[PROMPT, unparsed])
    with pytest.raises(ValueError, match="reward '0.5\\*scene-strict\\+clip' scores shapes scenes"):
        CotImageEnv(reward="0.5*scene-strict+clip", suite=[unparsed])
    env = CotImageEnv()
    with pytest.raises(ValueError, match="does not parse the prompt 'a purple elephant'"):
        env.reset(options={"prompt": unparsed})
    text_env = CotImageEnv(reward="clip", suite=[unparsed])  # a reward that reads text takes any prompt
    assert text_env.reset(seed=0)[1]["prompt"] == unparsed


def test_drawing_the_encoded_render_scores_one(env):
    from cotimage.shapes import render

    tokens = env.generator.encode_images(render(PROMPT, seed=0)[None])[0].numpy()
    *_, (obs, reward, terminated, _, info) = play(env, tokens, options={"prompt": PROMPT})
    assert terminated and reward == 1.0 and all(info["reward_details"].values())


def test_same_seed_same_actions_same_everything():
    actions = np.random.default_rng(1).integers(256, size=64)
    a = play(CotImageEnv(), actions, seed=7)
    b = play(CotImageEnv(), actions, seed=7)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, dict):
                assert u.keys() == v.keys()
                for key in u:
                    np.testing.assert_equal(u[key], v[key])
            else:
                np.testing.assert_equal(u, v)


def test_reset_samples_the_suite_with_the_seed(env):
    prompts = {env.reset(seed=s)[1]["prompt"] for s in range(5)}
    assert len(prompts) > 1
    assert env.reset(seed=3)[1]["prompt"] == env.reset(seed=3)[1]["prompt"]
    assert env.reset(options={"index": 2})[1]["prompt"] == cotimage.suites.load("shapes/compbench-train")[2].text


def test_render_shows_the_image_being_drawn(env):
    env.reset(seed=0, options={"prompt": PROMPT})
    blank = env.render()
    assert blank.shape == (32, 32, 3) and (blank == 0).all()
    for _ in range(8):
        env.step(255)
    assert not np.array_equal(env.render()[:4], blank[:4]) or (env.generator.decode(np.full((1, 64), 255))[0][:4] == 0).all()
    np.testing.assert_array_equal(env.render()[4:], blank[4:])


def test_process_rewards_telescope_to_the_terminal_score():
    env = CotImageEnv(process_reward_every=2, process_reward_coef=0.5)
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        start_potential = float(env.episodes.potential[0])
        rewards = []
        for _ in range(64):
            obs, reward, terminated, _, info = env.step(rng.integers(256))
            rewards.append(reward)
        assert sum(r != 0 for r in rewards[:-1]) <= 3  # shaping only every 2 rows (16 tokens)
        assert sum(rewards) == pytest.approx(info["score"] - 0.5 * start_potential, abs=1e-5)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (256, ValueError, r"\[0, 256\)"),
        (-1, ValueError, r"\[0, 256\)"),
        (1.5, ValueError, "integer"),
        (np.array([1, 2]), ValueError, "one token"),
        ([1, 2], ValueError, "one token"),
        ([[3]], ValueError, "one token"),
    ],
)
def test_bad_actions_raise(env, action, error, message):
    env.reset(seed=0)
    with pytest.raises(error, match=message):
        env.step(action)


def test_step_after_termination_needs_reset(env):
    play(env, [0] * 64, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_a_reward_that_raises_still_ends_the_episode():
    def failing(images, prompts):
        raise ValueError("this reward fails")

    env = CotImageEnv(reward=failing)
    with pytest.raises(ValueError, match="this reward fails"):
        play(env, [0] * 64, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "nope"}, "registered rewards"),
        ({"generator": "nope"}, "janus-pro"),
        ({"suite": "nope"}, "known suites"),
        ({"render_mode": "human"}, "rgb_array"),
        ({"process_reward_every": 8}, r"\[1, 8\)"),
        ({"process_reward_every": True}, "process_reward_every=True"),
        ({"process_reward_coef": float("nan")}, "process_reward_coef=nan must be a finite number"),
        ({"process_reward_coef": 1e39}, r"process_reward_coef=1e\+39 must be a finite number \(in float32's range"),
        ({"suite": ["a red circle", 3]}, "suite must list prompt texts"),
        ({"suite": 5}, "suite must be a suite name"),
        ({"suite": np.array(["a red circle"])}, "suite must be a suite name"),
        ({"suite": {"a red circle": 0}}, "suite must be a suite name"),
        ({"suite": (p for p in ["a red circle"])}, "suite must be a suite name"),  # not used up in silence
    ],
)
def test_bad_constructor_arguments_list_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CotImageEnv(**kwargs)


def test_numpy_numbers_are_welcome_as_shaping_settings():
    env = CotImageEnv(process_reward_every=np.int64(2), process_reward_coef=np.float32(0.5))
    assert env.episodes.shaping_interval == 16 and env.episodes.shaping_coef == 0.5


@pytest.mark.parametrize("seed", [True, -1, 2.5, 2**70])
def test_a_bad_reset_seed_is_named(env, seed):
    with pytest.raises(ValueError, match=rf"seed={seed!r} must be an int in \[0, 2\*\*63 - 1\]"):
        env.reset(seed=seed)


def test_bad_reset_options(env):
    with pytest.raises(ValueError, match="max_prompt_words=40"):
        env.reset(options={"prompt": "a red circle " * 20})
    with pytest.raises(ValueError, match="unknown"):
        env.reset(options={"prompt_text": PROMPT})
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"index": 10**6})
    with pytest.raises(ValueError, match="'prompt' takes a prompt text or PromptRecord, got 3"):
        env.reset(options={"prompt": 3})  # not read as a suite index
    with pytest.raises(ValueError, match="'index' takes suite indices"):
        env.reset(options={"index": PROMPT})
    with pytest.raises(ValueError, match="reset options must be a dict, got list"):
        env.reset(options=["prompt"])


def test_a_reset_whose_start_potential_fails_leaves_the_env_unsteppable():
    failing = {"now": False}

    def reward(images, prompts):
        if failing["now"]:
            raise ValueError("this reward fails")
        return images.mean(axis=(1, 2, 3)) / 255

    env = CotImageEnv(reward=reward, process_reward_every=2)
    env.reset(seed=0)
    failing["now"] = True
    with pytest.raises(ValueError, match="this reward fails"):
        env.reset(seed=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_reward_can_be_a_plain_callable():
    env = CotImageEnv(reward=lambda images, prompts: np.full(len(images), 0.25))  # no shipped reward scores this
    *_, (_, reward, terminated, _, info) = play(env, [255] * 64, seed=0)
    assert terminated and reward == info["score"] == 0.25


def test_random_sb3_ppo_runs_2048_steps_and_logs(tmp_path):
    from stable_baselines3 import PPO

    model = PPO("MultiInputPolicy", CotImageEnv(), n_steps=256, batch_size=64, n_epochs=1, tensorboard_log=str(tmp_path), verbose=0, seed=0)
    model.learn(2048)
    assert model.num_timesteps >= 2048
    assert list(tmp_path.rglob("events.out.tfevents.*"))
