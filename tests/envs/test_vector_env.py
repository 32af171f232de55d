import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import cotimage  # noqa: F401
from cotimage.envs import CotImageEnv, CotImageVectorEnv


def make_vec(n=4, **kwargs):
    return gym.make_vec("CotImage-v0", num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


def run(envs, actions):
    out = None
    for a in actions:
        out = envs.step(a)
    return out


def test_make_vec_gives_the_native_vector_env():
    envs = make_vec()
    assert isinstance(envs, CotImageVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.action_space.shape == (4,) and envs.observation_space["image_tokens"].shape == (4, 64)


def test_group_size_gives_consecutive_sub_envs_one_prompt():
    envs = make_vec(8)
    _, info = envs.reset(seed=0, options={"group_size": 4})
    prompts = list(info["prompt"])
    assert prompts[:4] == [prompts[0]] * 4 and prompts[4:] == [prompts[4]] * 4
    _, info = envs.reset(options={"prompts": ["a red circle", "two squares"], "group_size": 4})
    assert list(info["prompt"]) == ["a red circle"] * 4 + ["two squares"] * 4


def test_vector_env_matches_single_envs_given_the_same_prompts_and_actions():
    envs = make_vec(3)
    prompts = ["a red circle", "two blue squares", "a cross above a small diamond"]
    envs.reset(seed=0, options={"prompts": prompts})
    actions = np.random.default_rng(0).integers(256, size=(64, 3))
    _, rewards, terminated, _, info = run(envs, actions)
    assert terminated.all()
    for i, prompt in enumerate(prompts):
        env = CotImageEnv()
        env.reset(options={"prompt": prompt})
        for a in actions[:, i]:
            _, reward, *_ = env.step(int(a))
        assert reward == pytest.approx(rewards[i])
        np.testing.assert_array_equal(info["final_obs"][i]["image_tokens"], actions[:, i])


def test_same_step_autoreset_keeps_group_size():
    envs = make_vec(4)
    envs.reset(seed=0, options={"group_size": 2})
    obs, _, terminated, _, info = run(envs, np.zeros((64, 4), np.int64))
    assert terminated.all() and info["_final_info"].all()
    assert (obs["step"] == 0).all() and (obs["image_tokens"] == -1).all()
    prompts = envs.unwrapped.prompts
    assert prompts[0] == prompts[1] and prompts[2] == prompts[3]
    assert list(info["prompt"]) == [p.text for p in prompts] and info["_prompt"].all()


def test_a_rejected_group_size_leaves_the_last_one_in_force():
    envs = make_vec(4)
    envs.reset(seed=0, options={"group_size": 2})
    with pytest.raises(ValueError, match="group_size=3"):
        envs.reset(options={"group_size": 3})
    run(envs, np.zeros((64, 4), np.int64))  # the autoreset draws groups of 2, not 3
    prompts = envs.unwrapped.prompts
    assert prompts[0] == prompts[1] and prompts[2] == prompts[3]


def test_reset_without_seed_keeps_the_seeded_stream():
    def prompts_after_reads(read_seed):
        envs = make_vec(2)
        envs.reset(seed=0)
        envs.reset()
        if read_seed:
            assert envs.np_random_seed == 0
        _, info = envs.reset()
        return list(info["prompt"])

    assert prompts_after_reads(True) == prompts_after_reads(False)


def test_bad_vector_input():
    envs = make_vec(4)
    with pytest.raises(ValueError, match=r"seed=True must be an int in \[0, 2\*\*63 - 1\]"):
        envs.reset(seed=True)
    with pytest.raises(ValueError, match="dividing num_envs=4"):
        envs.reset(options={"group_size": 3})
    with pytest.raises(ValueError, match="num_envs=4"):
        envs.reset(options={"prompts": ["a red circle"]})
    with pytest.raises(ValueError, match="'prompts' takes a list, got str; for one, pass 'prompt'"):
        envs.reset(options={"prompts": "a red circle"})
    with pytest.raises(ValueError, match="'indices' takes suite indices"):
        envs.reset(options={"indices": ["a red circle"] * 4})
    with pytest.raises(ValueError, match="'prompts' takes prompt texts, PromptRecords or suite indices, got 1.5"):
        envs.reset(options={"prompts": ["a red circle", 1.5, 3, 4]})
    _, info = envs.reset(options={"indices": range(4)})  # any sequence
    assert list(info["prompt"]) == [r.text for r in envs.episodes.records[:4]]
    _, info = envs.reset(options={"prompts": ["a red circle", 3], "group_size": 2})  # texts and indices mix
    assert list(info["prompt"][:2]) == ["a red circle"] * 2 and info["prompt"][2] == envs.episodes.records[3].text
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        envs.step(np.zeros(3, np.int64))
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match=rf"^num_envs={bad!r} must be an int >= 1$"):
            CotImageVectorEnv(num_envs=bad)
    assert type(CotImageVectorEnv(num_envs=np.int64(2)).num_envs) is int  # a sweep's NumPy int is welcome


@pytest.mark.parametrize(
    ("mode", "vector_kwargs"),
    [("sync", {}), ("async", {"context": "spawn"})],  # forked workers can deadlock in torch's thread pool
)
def test_works_in_gymnasium_vector_envs(mode, vector_kwargs):
    envs = gym.make_vec("CotImage-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs)
    envs.reset(seed=0)
    _, rewards, terminated, _, _ = run(envs, np.zeros((64, 2), np.int64))
    assert terminated.all() and rewards.shape == (2,)
    envs.close()


def test_works_in_sb3_make_vec_env():
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("CotImage-v0", n_envs=2, seed=0)
    venv.reset()
    for _ in range(64):
        _, rewards, dones, infos = venv.step(np.zeros(2, np.int64))
    assert dones.all() and "terminal_observation" in infos[0]
