import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from cotimage.agents.common.pairs import PairDataset, collect_pairs, make_pairs
from cotimage.agents.common.rollout import collect
from cotimage.agents.dpo import DPO, DPOConfig, dpo_loss
from cotimage.agents.dpo.collect import collect_dataset, collect_pairs_command
from cotimage.envs.core import text_of
from cotimage.generators import SamplingConfig

PROMPTS = ("three yellow crosses", "a blue triangle below an orange cross")


def small(**kwargs):
    return DPOConfig(**{"batch_size": 16, "samples_per_prompt": 4, "learning_rate": 5e-5, "beta": 1.0, **kwargs})


# -- the loss, against values worked out by hand ------------------------------------------------
# Two pairs, beta = 0.5. Log-ratios (policy - reference): chosen [1, 0], rejected [-1, 1],
# so the margins are d = [2, -1] and beta * d = [1, -0.5].
LOGPS = [torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0]), torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])]


def softplus(x):
    return math.log1p(math.exp(x))  # -logsigmoid(-x)


@pytest.mark.parametrize(
    ("loss_type", "label_smoothing", "expected"),
    [
        ("sigmoid", 0.0, (softplus(-1.0) + softplus(0.5)) / 2),
        ("sigmoid", 0.1, (0.9 * softplus(-1.0) + 0.1 * softplus(1.0) + 0.9 * softplus(0.5) + 0.1 * softplus(-0.5)) / 2),
        ("ipo", 0.0, ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2),  # (d - 1 / (2 beta))^2 with 1 / (2 beta) = 1
        ("hinge", 0.0, (0.0 + 1.5) / 2),  # relu(1 - beta d) = [0, 1.5]
    ],
)
def test_loss_matches_hand_computed_value(loss_type, label_smoothing, expected):
    loss, stats = dpo_loss(*LOGPS, beta=0.5, loss_type=loss_type, label_smoothing=label_smoothing)
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert stats["chosen_reward"] == pytest.approx(0.25)  # beta * mean([1, 0])
    assert stats["rejected_reward"] == pytest.approx(0.0)  # beta * mean([-1, 1])
    assert stats["margin"] == pytest.approx(0.25)  # mean([1, -0.5])
    assert stats["reward_accuracy"] == 0.5
    assert stats["log_ratio"] == pytest.approx(0.25)  # mean([1, 0, -1, 1])


def test_loss_gradient_raises_chosen_and_lowers_rejected():
    chosen, rejected = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    loss, _ = dpo_loss(chosen, rejected, torch.zeros(3), torch.zeros(3), beta=0.2)
    assert float(loss.detach()) == pytest.approx(math.log(2))
    loss.backward()
    assert torch.allclose(chosen.grad, torch.full((3,), -0.2 * 0.5 / 3))  # -beta * sigmoid(0) / N
    assert torch.allclose(rejected.grad, -chosen.grad)
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(chosen, rejected, torch.zeros(3), torch.zeros(3), loss_type="kto")


# -- pairs ---------------------------------------------------------------------------------------
def fake_rollout(prompts, scores):
    return SimpleNamespace(prompts=prompts, tokens=torch.arange(len(scores))[:, None].repeat(1, 5), scores=torch.tensor(scores))


def test_pairs_from_a_numpy_group_size_save_as_json(tmp_path):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.2]), np.int64(2))
    pairs.save(tmp_path / "pairs")
    assert PairDataset.load(tmp_path / "pairs").metadata["samples_per_prompt"] == 2


def test_make_pairs_picks_best_and_worst_and_drops_ties():
    prompts = ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    pairs = make_pairs(fake_rollout(prompts, [0.2, 0.9, 0.5, 0.4, 0.4, 0.4, 1.0, 0.0, 1.0]), 3)
    assert pairs.prompts == ["a", "c"]
    assert pairs.chosen[:, 0].tolist() == [1, 6]  # of tied best scores, the first
    assert pairs.rejected[:, 0].tolist() == [0, 7]
    assert pairs.chosen_scores.tolist() == pytest.approx([0.9, 1.0])
    assert pairs.rejected_scores.tolist() == pytest.approx([0.2, 0.0])
    assert pairs.metadata | {"score_mean": 0, "score_std": 0} == {
        "num_prompts": 3, "num_images": 9, "samples_per_prompt": 3, "ties_dropped": 1, "score_mean": 0, "score_std": 0,
    }
    with pytest.raises(ValueError, match="mix prompts"):
        make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.0, 1.0]), 4)
    with pytest.raises(ValueError, match="groups"):
        make_pairs(fake_rollout(["a"] * 5, [0.0] * 5), 2)


def test_dataset_round_trip_and_overwrite_refusal(tmp_path):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.25]), 2)
    pairs.save(tmp_path / "ds")
    loaded = PairDataset.load(tmp_path / "ds")
    assert loaded.prompts == pairs.prompts and loaded.metadata == pairs.metadata
    for name in ("chosen", "rejected", "chosen_scores", "rejected_scores"):
        assert torch.equal(getattr(loaded, name), getattr(pairs, name))
    assert loaded.chosen.dtype == torch.long and loaded.fingerprint() == pairs.fingerprint()
    with pytest.raises(FileExistsError, match="overwrite"):
        pairs.select([0]).save(tmp_path / "ds")
    pairs.select([0]).save(tmp_path / "ds", overwrite=True)
    assert len(PairDataset.load(tmp_path / "ds")) == 1
    with pytest.raises(FileNotFoundError):
        PairDataset.load(tmp_path / "missing")
    (tmp_path / "notes").write_text("the user's")
    for target in (tmp_path / "notes", tmp_path / "notes" / "ds"):  # a file, or a file above the directory
        with pytest.raises(FileExistsError, match="notes is a file"):
            pairs.save(target, overwrite=True)
    assert (tmp_path / "notes").read_text() == "the user's"


@pytest.mark.parametrize("content", ["[]", '{"format": "cotimage-pairs", "version": 1}'])
def test_a_corrupt_pair_index_is_named_and_a_non_bool_overwrite_refused(tmp_path, content):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.25]), 2)
    pairs.save(tmp_path / "ds")
    with pytest.raises(ValueError, match="overwrite='no' must be True or False"):
        pairs.select([0]).save(tmp_path / "ds", overwrite="no")
    assert len(PairDataset.load(tmp_path / "ds")) == 2
    (tmp_path / "ds" / "pairs.json").write_text(content)
    with pytest.raises(ValueError, match="pairs"):
        PairDataset.load(tmp_path / "ds")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": None}, "batch_size=None must be an int >= 1"),
        ({"seed": -1}, r"seed=-1 must be an int in \[0"),
        ({"prompts": "abc"}, "prompts='abc' must be None .* or a list of prompt texts"),
    ],
)
def test_collect_dataset_names_bad_arguments_before_drawing(kwargs, message):
    with pytest.raises(ValueError, match=message):
        collect_dataset(2, 2, **kwargs)


def test_a_save_that_cannot_encode_its_index_leaves_the_saved_dataset_as_it_was(tmp_path):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.25]), 2)
    pairs.save(tmp_path / "ds")
    broken = pairs.select([0])
    broken.metadata = {"num_prompts": object()}
    with pytest.raises(TypeError, match="not JSON serializable"):
        broken.save(tmp_path / "ds", overwrite=True)
    assert len(PairDataset.load(tmp_path / "ds")) == 2  # the old dataset, whole
    with pytest.raises(TypeError):
        broken.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()  # no half-written directory that refuses the next save


def test_collect_pairs_keeps_numpy_counts_as_python_ints(tmp_path):
    agent = DPO("CotImage-v0", config=small(), seed=0)
    pairs = collect_pairs(agent.collect, 16, np.int64(4), np.int64(4))
    assert all(type(pairs.metadata[k]) is int for k in ("num_prompts", "num_images", "samples_per_prompt"))
    pairs.save(tmp_path / "ds")


# -- configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"beta": -0.1}, "beta"),
        ({"beta": 0.0}, "beta"),
        ({"loss_type": "kto"}, "loss_type"),
        ({"samples_per_prompt": 3}, "samples_per_prompt"),
        ({"samples_per_prompt": 1}, "samples_per_prompt"),
        ({"mode": "batch"}, "mode"),
        ({"mode": "offline"}, "dataset"),
        ({"dataset": "somewhere"}, "dataset"),
        ({"label_smoothing": 0.5}, "label_smoothing"),
        ({"label_smoothing": 0.1, "loss_type": "ipo"}, "label_smoothing"),
        ({"sync_reference": True}, "sync_reference"),
        ({"pairs_per_update": 0}, "pairs_per_update"),
        ({"pairs_per_update": 4}, "pairs_per_update"),  # online: an update trains on all of its batch's pairs
        ({"pairs_per_update": 2.0, "mode": "iterative"}, "pairs_per_update"),
        ({"samples_per_prompt": 4.0}, "samples_per_prompt"),
        ({"beta": math.inf}, "beta"),
        ({"sync_reference": "yes", "mode": "iterative"}, "sync_reference"),
    ],
)
def test_bad_config_fails_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field}="):
        small(**changes)


def test_config_round_trips_through_a_dict():
    config = small(mode="iterative", train_prompts=["a red circle", 3], sync_reference=True)
    assert DPOConfig.from_dict(config.to_dict()) == config
    assert config.train_prompts == ("a red circle", 3)


# -- training ------------------------------------------------------------------------------------
def mean_score(agent, envs, prompts):
    """Fixed-seed scene reward of ``agent``'s policy, 64 images per prompt, through the env."""
    agent.policy.eval()
    sampler = torch.Generator().manual_seed(99)
    scores = [collect(envs, agent.policy, SamplingConfig(), sampler, {"prompts": [p], "group_size": 64}).scores.mean() for p in prompts]
    agent.policy.train()
    return float(sum(scores)) / len(scores)


def test_online_dpo_raises_the_scene_reward():
    # 16 updates of 64 images (16 prompts x 4, pairs = best vs. worst of 4) on two prompts.
    # Measured here: 0.419 -> 0.496 (seed 0); seeds 1-3 gave +0.082, +0.072, +0.085.
    agent = DPO("CotImage-v0", config=DPOConfig(batch_size=64, samples_per_prompt=4, learning_rate=5e-5, beta=1.0, train_prompts=PROMPTS), seed=0)
    envs = gym.make_vec("CotImage-v0", num_envs=64, vectorization_mode="vector_entry_point", generator=agent.generator)
    before = mean_score(agent, envs, PROMPTS)
    log = []
    agent.learn(16 * 64, callback=lambda a, m: log.append(m), progress_bar=False)
    after = mean_score(agent, envs, PROMPTS)
    assert len(log) == 16 and agent.num_images == 16 * 64
    print(f"fixed-seed scene reward {before:.3f} -> {after:.3f}; training batches "
          f"{sum(m['reward/mean'] for m in log[:4]) / 4:.3f} (first 4) -> {sum(m['reward/mean'] for m in log[-4:]) / 4:.3f} (last 4)")
    assert after > before + 0.04, (before, after)


def test_online_step_collects_through_the_env():
    agent = DPO("CotImage-v0", config=small(train_prompts=("a red circle", 3)), seed=0)  # a text and a suite index
    resets, drawn, steps = [], [], []
    reset, step = agent.envs.reset, agent.envs.step

    def recording_reset(**kwargs):
        out = reset(**kwargs)
        resets.append(kwargs["options"])
        drawn.append([text_of(p) for p in agent.envs.prompts])
        return out

    agent.envs.reset = recording_reset
    agent.envs.step = lambda actions: steps.append(1) or step(actions)
    metrics = agent.train_step()
    assert resets == [{"group_size": 4, "prompts": ["a red circle", 3] * 2}]
    assert drawn[0][4] == agent.envs.episodes.records[3].text
    assert len(steps) == agent.generator.num_image_tokens and agent.num_images == 16
    assert {"reward/mean", "pairs/count", "train/loss", "train/reward_accuracy", "train/margin", "train/grad_norm"} <= metrics.keys()


def test_offline_dpo_from_a_collected_dataset(tmp_path):
    dataset = collect_dataset(12, 4, batch_size=16, seed=1)  # 12 prompts in batches of 4: the last batch half used
    assert dataset.metadata["num_images"] == 48 and dataset.metadata["num_prompts"] == 12
    assert len(dataset) == 12 - dataset.metadata["ties_dropped"] and len(dataset) > 0
    assert bool((dataset.chosen_scores > dataset.rejected_scores).all())
    dataset.save(tmp_path / "pairs")
    agent = DPO("CotImage-v0", config=small(mode="offline", dataset=str(tmp_path / "pairs"), pairs_per_update=4), seed=0)
    log = []
    agent.learn(dataset.num_images, callback=lambda a, m: log.append(m), progress_bar=False)
    # one epoch over the dataset counts the images drawn to make it
    assert agent.num_images == dataset.num_images and agent.pairs_seen == len(dataset)
    assert len(log) == math.ceil(len(dataset) / 4) and all(m["train/epoch"] == 1 for m in log)
    assert all(math.isfinite(m["train/loss"]) for m in log)
    with pytest.raises(FileNotFoundError, match="no pair dataset"):
        DPO("CotImage-v0", config=small(mode="offline", dataset=str(tmp_path / "missing")))


def test_collect_pairs_command_writes_and_refuses_to_overwrite(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "ds"), "--prompts", "4", "--samples-per-prompt", "4", "--batch-size", "16", "--no-progress"]
    assert collect_pairs_command(argv) == 0
    dataset = PairDataset.load(tmp_path / "ds")
    assert dataset.metadata["suite"] == "shapes/compbench-train" and dataset.metadata["reward"] == "scene"
    assert "wrote" in capsys.readouterr().out
    assert collect_pairs_command(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    (tmp_path / "file").write_text("mine")
    assert collect_pairs_command([*argv[:1], str(tmp_path / "file"), *argv[2:]]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "file").read_text() == "mine"
    assert collect_pairs_command([*argv[:1], str(tmp_path / "file" / "ds"), *argv[2:]]) == 2
    assert "file is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        collect_pairs_command([*argv, "--seed", "-1"])
    assert "argument --seed: '-1' is no seed" in capsys.readouterr().err


def test_offline_dpo_says_when_the_envs_reward_is_not_the_datasets(tmp_path):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.25]), 2)
    pairs.chosen, pairs.rejected = (torch.zeros(len(pairs), 64, dtype=torch.long) for _ in range(2))
    pairs.metadata |= {"reward": "scene", "suite": "shapes/compbench-train"}
    pairs.save(tmp_path / "ds")
    config = small(mode="offline", dataset=str(tmp_path / "ds"))
    with pytest.warns(UserWarning, match="ranked by reward 'scene' on 'shapes/compbench-train'; the env's reward 'pref'"):
        DPO("CotImage-v0", config=config, env_kwargs={"reward": "pref"})


def test_a_dataset_of_another_codebook_is_refused_at_construction(tmp_path):
    pairs = make_pairs(fake_rollout(["a", "a", "b", "b"], [0.0, 1.0, 0.5, 0.25]), 2)
    pairs.chosen = torch.full((len(pairs), 64), 300)
    pairs.rejected = torch.zeros(len(pairs), 64, dtype=torch.long)
    pairs.save(tmp_path / "ds")
    with pytest.raises(ValueError, match=r"dataset=.* holds tokens in \[0, 300\]; this generator's codebook has 256"):
        DPO("CotImage-v0", config=small(mode="offline", dataset=str(tmp_path / "ds")))


def test_collect_pairs_cycles_given_prompts():
    agent = DPO("CotImage-v0", config=small(), seed=0)
    seen = []
    pairs = collect_pairs(agent.collect, 16, 4, 6, ["a red circle", "two squares"], on_rollout=lambda r: seen.extend(r.prompts))
    assert [text_of(p) for p in seen[::4]] == ["a red circle", "two squares"] * 4  # 6 prompts in 2 batches of 4
    assert agent.num_images == 32 and pairs.metadata["num_images"] == 24 and set(pairs.prompts) <= {"a red circle", "two squares"}


def test_iterative_rounds_with_a_moving_reference():
    config = small(mode="iterative", prompts_per_round=8, epochs_per_round=2, pairs_per_update=4, sync_reference=True)
    agent = DPO("CotImage-v0", config=config, seed=0)
    base = {k: v.clone() for k, v in agent.reference.state_dict().items()}
    log = []
    agent.learn(64, callback=lambda a, m: log.append(m), progress_bar=False)
    assert agent.num_rounds == 2 and agent.num_images == 64 and [m["train/round"] for m in log] == [1, 2]
    assert all(m["train/updates"] == 2 * math.ceil(m["pairs/count"] / 4) for m in log)
    # round 2 started from the policy after round 1 as its reference
    assert any(not torch.equal(base[k], v) for k, v in agent.reference.state_dict().items())


@pytest.mark.parametrize("mode", ["online", "iterative", "offline"])
def test_save_load_continues_exactly(tmp_path, mode):
    extra = {
        "online": {"train_prompts": ("a red circle", "two blue squares", "a green triangle")},
        "iterative": {"prompts_per_round": 6, "pairs_per_update": 2, "sync_reference": True},
        "offline": {"dataset": str(tmp_path / "pairs"), "pairs_per_update": 3},
    }[mode]
    if mode == "offline":
        collect_dataset(8, 4, batch_size=16, seed=2).save(tmp_path / "pairs")
    # images before and after saving: online 2 + 2 updates; iterative 2 rounds (a round of 6
    # prompts draws two batches) + 1, so the saved reference has moved; offline, stop mid-epoch
    first, second = {"online": (32, 32), "iterative": (64, 32), "offline": (16, 32)}[mode]

    def losses(agent, images):
        log = []
        agent.learn(images, callback=lambda a, m: log.append(m.get("train/loss")), progress_bar=False)
        return log

    agent = DPO("CotImage-v0", config=small(mode=mode, **extra), seed=3)
    losses(agent, first)
    agent.save(tmp_path / "agent")
    saved = agent.num_images, {k: v.clone() for k, v in agent.reference.state_dict().items()}
    with pytest.raises(FileExistsError):
        agent.save(tmp_path / "agent")
    uninterrupted = losses(agent, second)
    assert uninterrupted and None not in uninterrupted
    resumed = DPO.load(tmp_path / "agent")
    assert resumed.num_images == saved[0]
    assert all(torch.equal(saved[1][k], v) for k, v in resumed.reference.state_dict().items())
    assert losses(resumed, second) == uninterrupted
    for (name, a), b in zip(agent.policy.state_dict().items(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(agent.reference.state_dict().values(), resumed.reference.state_dict().values()):
        assert torch.equal(a, b)
