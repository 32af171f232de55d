import subprocess
import sys
import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from tbparse import SummaryReader

import cotimage  # noqa: F401
from cotimage import generators
from cotimage.agents.sb3 import SB3PPO, PretrainedTokenPolicy, SB3PPOConfig
from cotimage.agents.sb3.policy import shared_prefixes
from cotimage.envs import NOT_DRAWN, CotImageEnv, CotImageVectorEnv
from cotimage.generators import PromptBatch, SamplingConfig, ShapesPolicy
from cotimage.generators.shapes import PAD

PROMPTS = ["a red circle above a blue square", "two green triangles", "a small cross", "a big yellow diamond"]
STEPS = [0, 1, 37, 63]  # one batch, every row at its own step


def small(**changes):
    return SB3PPOConfig(**{"batch_size": 2, "n_steps": 32, "minibatch_size": 32, "n_epochs": 1, **changes})


def observations(generator, prompts=PROMPTS, steps=STEPS, seed=0):
    """A batch of env observations, row i drawn ``steps[i]`` random tokens into ``prompts[i]``."""
    rng = np.random.default_rng(seed)
    env = CotImageEnv(generator=generator)
    rows = []
    for prompt, step in zip(prompts, steps):
        obs, _ = env.reset(options={"prompt": prompt})
        for token in rng.integers(generator.codebook_size, size=step):
            obs, *_ = env.step(int(token))
        rows.append(obs)
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def reference_log_probs(reference, obs, sampling=None):
    rows = []
    for i, step in enumerate(obs["step"][:, 0]):
        ids = torch.as_tensor(obs["prompt"][i : i + 1])
        tokens = torch.as_tensor(obs["image_tokens"][i : i + 1, :step])
        assert (tokens != NOT_DRAWN).all()
        rows.append(reference.next_log_probs(PromptBatch(ids, ids != PAD, ("",)), tokens, sampling or SamplingConfig())[0])
    return torch.stack(rows)


def distribution(sb3_policy, obs):
    tensors, _ = sb3_policy.obs_to_tensor(obs)
    with torch.no_grad():
        return sb3_policy.get_distribution(tensors).distribution.logits, sb3_policy.predict_values(tensors)


@pytest.fixture(scope="module")
def reference():
    return ShapesPolicy.load().eval()


@pytest.fixture(scope="module")
def fresh():
    return SB3PPO(policy=generators.load("shapes"), config=small(), seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("tb")
    agent = SB3PPO(config=small(learning_rate=1e-4), tensorboard_log=log_dir, seed=1)
    seen = []
    agent.learn(total_images=2, callback=lambda a, metrics: seen.append(metrics), progress_bar=False)
    return agent, log_dir, seen


def test_initial_distribution_is_the_pretrained_next_token_distribution(fresh, reference):
    obs = observations(fresh.generator)
    log_probs, values = distribution(fresh.model.policy, obs)
    torch.testing.assert_close(log_probs, reference_log_probs(reference, obs), atol=1e-4, rtol=0)
    assert torch.all(values == 0)  # zero-initialised value head
    assert fresh.model.policy.action_net is fresh.policy.head and not fresh.model.policy.ortho_init


def episode(generator, prompt, steps, seed):
    """Observations of one image at several steps (a minibatch of SB3 holds such rows)."""
    env, rng = CotImageEnv(generator=generator), np.random.default_rng(seed)
    obs, _ = env.reset(options={"prompt": prompt})
    rows = []
    for step in range(max(steps) + 1):
        if step in steps:
            rows.append(obs)
        if step < max(steps):
            obs, *_ = env.step(int(rng.integers(generator.codebook_size)))
    return rows


def test_rows_of_one_image_share_a_pass_and_stay_exact(fresh, reference):
    gen = fresh.generator
    rows = episode(gen, PROMPTS[0], [0, 5, 20, 63], 0) + episode(gen, PROMPTS[1], [10, 30], 1) + episode(gen, PROMPTS[0], [20], 2)
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    obs = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    reps, slot = shared_prefixes(*(torch.as_tensor(obs[k]).reshape(len(rows), -1) for k in ("prompt", "image_tokens", "step")))
    assert len(reps) == 3 and slot.shape == (7,)  # one pass per image, not per row
    log_probs, _ = distribution(fresh.model.policy, obs)
    torch.testing.assert_close(log_probs, reference_log_probs(reference, obs), atol=1e-4, rtol=0)


def test_sampling_temperature_scales_the_pretrained_logits(reference):
    env = CotImageEnv()
    policy = PretrainedTokenPolicy(
        env.observation_space, env.action_space, lambda _: 1e-5, shapes_policy=ShapesPolicy.load(), temperature=0.5
    )
    obs = observations(env.generator, PROMPTS[:2], [0, 20])
    log_probs, _ = distribution(policy, obs)
    expected = reference_log_probs(reference, obs, SamplingConfig(temperature=0.5))
    torch.testing.assert_close(log_probs, expected, atol=1e-4, rtol=0)


def test_sub_envs_share_the_loaded_generator(fresh):
    assert fresh.envs.num_envs == 2
    assert all(env.unwrapped.generator is fresh.generator for env in fresh.envs.envs)


def test_learn_counts_images_and_logs_reward_mean_to_tensorboard(trained):
    agent, log_dir, seen = trained
    assert agent.num_images == 2 and agent.num_updates == 2  # 2 envs x 2 rollouts of 32 tokens
    runs = [p for p in log_dir.iterdir() if p.is_dir()]
    assert [p.name for p in runs] == ["SB3PPO_1"] and list(runs[0].glob("events.out.tfevents.*"))
    scalars = SummaryReader(str(runs[0])).scalars
    rewards = scalars[scalars.tag == "reward/mean"]
    assert list(rewards.step) == [2] and 0 <= rewards.value.iloc[0] <= 1  # step = images, as native agents
    assert "rollout/ep_rew_mean" in set(scalars.tag)  # SB3's own logger writes to the same run
    assert len(seen) == 2 and "reward/mean" in seen[1] and "train/policy_gradient_loss" in seen[1]


def test_learning_moves_the_policy(trained, reference):
    agent, *_ = trained
    obs = observations(agent.generator)
    log_probs, _ = distribution(agent.model.policy, obs)
    assert (log_probs - reference_log_probs(reference, obs)).abs().max() > 1e-4


def test_predict_single_and_batch(fresh):
    obs = observations(fresh.generator)
    single, state = fresh.predict({key: value[2] for key, value in obs.items()})
    assert state is None and single.shape == () and 0 <= int(single) < 256
    batch, _ = fresh.predict(obs, deterministic=True)
    assert batch.shape == (4,) and batch.dtype.kind == "i" and ((batch >= 0) & (batch < 256)).all()
    greedy = distribution(fresh.model.policy, obs)[0].argmax(-1).numpy()
    np.testing.assert_array_equal(batch, greedy)


def test_save_load_round_trip_gives_identical_predictions(trained, tmp_path):
    agent, *_ = trained
    path = agent.save(tmp_path / "agent")
    assert (path / "agent.json").is_file() and (path / "sb3_ppo.zip").is_file()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        agent.save(path)
    loaded = SB3PPO.load(path)
    obs = observations(agent.generator, seed=3)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    torch.testing.assert_close(distribution(loaded.model.policy, obs), distribution(agent.model.policy, obs))
    assert (loaded.num_images, loaded.num_updates, loaded.config) == (agent.num_images, agent.num_updates, agent.config)


def test_env_arguments_follow_the_native_agents(fresh):
    with pytest.raises(ValueError, match="num_envs=3, but config.batch_size=2"):
        SB3PPO(CotImageVectorEnv(3, generator=fresh.generator), config=small())
    with pytest.raises(ValueError, match="env_kwargs only apply"):
        SB3PPO(gym.make("CotImage-v0", generator=fresh.generator), config=small(), env_kwargs={"suite": "x"})
    with pytest.raises(ValueError, match="total_images=0"):
        fresh.learn(0)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"n_steps": 0}, "n_steps"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"minibatch_size": 65}, "minibatch_size"),
        ({"minibatch_size": 1}, "minibatch_size"),
        ({"gamma": 0.0}, "gamma"),
        ({"gae_lambda": 1.5}, "gae_lambda"),
        ({"clip_range": 0.0}, "clip_range"),
        ({"clip_range_vf": -1.0}, "clip_range_vf"),
        ({"vf_coef": -0.1}, "vf_coef"),
        ({"ent_coef": -0.01}, "ent_coef"),
        ({"target_kl": 0.0}, "target_kl"),
        ({"top_k": 5}, "top_k"),
        ({"cfg_weight": 5.0}, "cfg_weight"),
        ({"loss_distribution": "conditional"}, "loss_distribution"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field}="):
        small(**changes)


def test_native_callback_stops_learn_and_eval_every_logs_eval_metrics():
    config = small(eval_every=1, eval_prompts=1, eval_images_per_prompt=1)
    agent = SB3PPO(CotImageEnv(), config=config)  # from a single env: SB3 steps batch_size copies of it
    assert agent.envs.num_envs == 2
    calls = []
    agent.learn(total_images=10, callback=lambda a, metrics: calls.append(metrics) or False, progress_bar=False)
    assert len(calls) == 1 and agent.num_updates == 1  # SB3 stops at the first step after the update
    assert "eval/shapes/compbench-val/overall" in calls[0] and "train/approx_kl" in calls[0]


def test_learn_without_tensorboard_log_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SB3's default logger makes its folder
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    SB3PPO(config=small(), seed=0).learn(total_images=2, progress_bar=False)
    assert list(tmp_path.glob("SB3-*")) == []  # (torch itself keeps one reused cache folder there)


def test_a_loaded_agent_continues_its_own_tensorboard_run(tmp_path):
    # Left to SB3, a continued learn() writes into the newest run of the directory: here B's.
    log_dir = tmp_path / "tb"
    first = SB3PPO(config=small(), tensorboard_log=log_dir, seed=0).learn(2, progress_bar=False)
    first.save(tmp_path / "first")
    SB3PPO(config=small(), tensorboard_log=log_dir, seed=1).learn(2, progress_bar=False)
    SB3PPO.load(tmp_path / "first").learn(2, progress_bar=False)

    def reward_steps(run):
        scalars = SummaryReader(str(log_dir / run)).scalars
        return list(scalars[scalars.tag == "reward/mean"].step)

    assert reward_steps("SB3PPO_1") == [2, 4] and reward_steps("SB3PPO_2") == [2]


@pytest.mark.parametrize("seed", [-1, 2.5, 2**64])
def test_a_bad_seed_fails_at_construction(seed):
    with pytest.raises(ValueError, match=rf"seed={seed!r} must be an int in \[0, 2\*\*63 - 1\]"):
        SB3PPO(config=small(), seed=seed)


def test_a_tensorboard_log_that_is_a_file_fails_at_construction(tmp_path):
    (tmp_path / "notes").write_text("the user's")
    with pytest.raises(ValueError, match=r"tensorboard_log=.*notes' cannot be a directory: .*notes is a file"):
        SB3PPO(config=small(), tensorboard_log=tmp_path / "notes")


def test_sb3ppo_imports_from_the_agent_zoo_and_loads_stable_baselines3_only_then():
    code = ("import sys, cotimage.agents as agents; assert 'stable_baselines3' not in sys.modules; "
            "from cotimage.agents import SB3PPO, SB3PPOConfig; assert 'stable_baselines3' in sys.modules; "
            "assert agents.registry()['sb3ppo'] is SB3PPO and SB3PPO.config_class is SB3PPOConfig")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_save_without_its_model_file_is_named(tmp_path):
    agent = SB3PPO(config=small())
    agent.save(tmp_path / "a")
    (tmp_path / "a" / "sb3_ppo.zip").unlink()
    with pytest.raises(FileNotFoundError, match="holds no sb3_ppo.zip: not a whole saved SB3PPO"):
        SB3PPO.load(tmp_path / "a")
