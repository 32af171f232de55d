"""Every native agent trains through the env on any generator and device.

The Janus-Pro path runs on a tiny random Janus model (built offline) with a plain callable
reward, on the CPU here and on CUDA where a GPU is present (``-m gpu`` selects those).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cotimage import generators
from cotimage.agents import DPO, GRPO, PPO, REINFORCE, DPOConfig, GRPOConfig, PPOConfig, REINFORCEConfig
from cotimage.evaluation import evaluate
from cotimage.generators.janus import JanusGenerator, build_random

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")])
DEVICES = ["cpu", CUDA]
AGENTS = {
    "grpo": (GRPO, GRPOConfig(batch_size=4, group_size=2, beta=0.01)),
    "dpo": (DPO, DPOConfig(batch_size=4, samples_per_prompt=2)),
    "ppo": (PPO, PPOConfig(batch_size=4, minibatch_size=2)),
    "reinforce": (REINFORCE, REINFORCEConfig(batch_size=4, group_size=2)),
}


def brightness(images: np.ndarray, prompts) -> np.ndarray:
    """A reward any generator's images can earn: mean pixel value in [0, 1]."""
    return images.mean(axis=(1, 2, 3)).astype(np.float32) / 255


def janus(device: str) -> JanusGenerator:
    model, processor = build_random(seed=0)
    return JanusGenerator(model=model, processor=processor, device=device)


def train_one_update(name: str, generator, reward) -> tuple:
    cls, config = AGENTS[name]
    agent = cls("CotImage-v0", generator, config, env_kwargs={"reward": reward}, seed=0)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    metrics: list[dict] = []
    agent.learn(config.batch_size, callback=lambda _, m: metrics.append(m), progress_bar=False)
    moved = any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    return agent, metrics[0], moved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(AGENTS))
def test_agents_train_janus_through_the_env(name, device):
    agent, metrics, moved = train_one_update(name, janus(device), brightness)
    assert agent.num_images == 4 and agent.policy.device.type == device
    assert np.isfinite(metrics["reward/mean"]) and moved
    action, _ = agent.predict(agent.envs.reset(seed=0)[0])
    assert action.shape == (4,) and (action >= 0).all() and (action < agent.generator.codebook_size).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", list(AGENTS))
def test_shapes_agents_train_and_resume_on_cuda(name, tmp_path):
    agent, metrics, moved = train_one_update(name, generators.load("shapes", device="cuda"), brightness)
    assert agent.policy.device.type == "cuda" and moved and 0 <= metrics["reward/mean"] <= 1
    agent.save(tmp_path / "agent")
    cuda_shapes = generators.load("shapes", device="cuda")  # a callable reward: the env is passed again
    resumed = type(agent).load(tmp_path / "agent", "CotImage-v0", cuda_shapes, env_kwargs={"reward": brightness})
    assert resumed.sampler.device.type == "cuda" and resumed.num_images == agent.num_images
    resumed.learn(4, progress_bar=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_evaluation_and_generate_on_cuda():
    cpu, cuda = generators.load("shapes"), generators.load("shapes", device="cuda")
    assert cuda.generate(["a red circle"], seed=0).shape == cpu.generate(["a red circle"], seed=0).shape
    result = evaluate(cuda, "shapes/compbench-val", images_per_prompt=1, max_prompts=2, progress=False)
    assert 0 <= result.overall.mean <= 1
