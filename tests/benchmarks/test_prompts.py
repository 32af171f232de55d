from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks import rewards as rewards_benchmark
from benchmarks import sampling as sampling_benchmark
from benchmarks.common import mixed_prompts
from cotimage import generators, suites


def test_mixed_prompts_take_every_category_in_turn_and_cycle_past_the_suite():
    categories = suites.categories("shapes/geneval")
    assert [r.category for r in mixed_prompts("shapes/geneval", 12)] == categories * 2
    records = suites.load("shapes/geneval")
    batch = mixed_prompts("shapes/geneval", len(records) + 10)
    assert len(batch) == len(records) + 10
    assert Counter(r.text for r in batch[: len(records)]) == Counter(r.text for r in records)
    with pytest.raises(ValueError, match="batch=0 must be an int >= 1"):
        mixed_prompts("shapes/geneval", 0)


class FakePolicy:
    """Two image tokens, always token 0, so both samplers of benchmarks.sampling agree at once."""

    num_image_tokens = 2

    def eval(self):
        return self

    def parameters(self):
        return iter([torch.zeros(3)])

    def sample(self, prompts, sampling, generator):
        return SimpleNamespace(tokens=torch.zeros(len(prompts), self.num_image_tokens, dtype=torch.long))

    def next_log_probs(self, prompts, tokens, sampling):
        return torch.zeros(len(prompts), 1)


class FakeGenerator:
    def __init__(self):
        self.policy, self.texts = FakePolicy(), []

    def encode_prompts(self, texts):
        self.texts += texts
        return texts

    def generate(self, texts, seed=None):
        self.texts += texts
        return np.zeros((len(texts), 32, 32, 3), np.uint8)


def two_seconds(fn, repeats):
    fn()
    return 2.0


@pytest.fixture
def fake(monkeypatch):
    """A fake generator, a timer that calls once and reports 2 s, and the appended figures."""
    generator, appended = FakeGenerator(), {}
    monkeypatch.setattr(generators, "load", lambda name: generator)
    for module in (sampling_benchmark, rewards_benchmark):
        monkeypatch.setattr(module, "best_time", two_seconds)
        monkeypatch.setattr(module, "append_result", lambda name, figures: appended.setdefault(name, figures))
    return generator, appended


def test_sampling_divides_by_the_images_it_sampled(fake):
    generator, appended = fake
    sampling_benchmark.main(["--batch", "600", "--repeats", "1"])  # more than geneval's 553 prompts
    assert generator.texts == [r.text for r in mixed_prompts("shapes/geneval", 600)]
    figures = appended["sampling"]
    assert figures["batch"] == 600 and figures["kv_cache_images_per_s"] == 300 and figures["same_tokens"]


def test_rewards_scores_prompts_of_every_category(fake):
    generator, appended = fake
    rewards_benchmark.main(["--rewards", "scene", "--batch", "10", "--repeats", "1"])
    assert generator.texts == [r.text for r in mixed_prompts("shapes/compbench-val", 10)]
    assert appended["rewards"]["batch"] == 10 and appended["rewards"]["images_per_s"] == {"scene": 5.0}
