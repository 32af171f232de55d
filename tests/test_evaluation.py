import numpy as np
import pytest
import torch

from cotimage import evaluate, generators
from cotimage.evaluation import image_grid, stratified_bootstrap


def test_evaluate_is_deterministic_and_per_category(tmp_path):
    kwargs = dict(images_per_prompt=2, seed=3, max_prompts=2, progress=False)
    first = evaluate("shapes", "shapes/geneval", grid_path=tmp_path / "grid.png", **kwargs)
    second = evaluate("shapes", "shapes/geneval", **kwargs)
    assert list(first.categories) == ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    assert first.scores.shape == (12, 2)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.overall == second.overall
    assert first.overall.low <= first.overall.mean <= first.overall.high
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert "**overall**" in first.table()


def test_evaluate_accepts_a_callable_reward():
    result = evaluate("shapes", "shapes/geneval", images_per_prompt=1, max_prompts=1, progress=False,
                      reward=lambda images, prompts: np.ones(len(images)))
    assert result.overall.mean == 1.0 and result.reward == "<lambda>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images_per_prompt": 0}, r"images_per_prompt=0 must be an int >= 1"),
        ({"images_per_prompt": True}, r"images_per_prompt=True must be an int >= 1"),
        ({"max_prompts": 0}, r"max_prompts=0 must be None \(every prompt\) or an int >= 1"),
        ({"max_prompts": -2}, r"max_prompts=-2 must be None"),
        ({"max_prompts": 1.5}, r"max_prompts=1.5 must be None"),
        ({"batch_size": 0}, r"batch_size=0 must be an int >= 1"),
        ({"suite": "shapes/nope"}, "known suites"),
        ({"seed": -1}, r"seed=-1 must be an int in \[0, 2\*\*63 - 1\]"),
        ({"seed": None}, r"seed=None must be an int"),
        ({"sampling": {"temperature": 2.0}}, r"sampling=.* must be None .* or a SamplingConfig"),
        ({"grid_path": "grid.xyz"}, r"grid_path='grid.xyz' must name an image file PIL writes"),
    ],
)
def test_evaluate_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate("shapes", **{"suite": "shapes/geneval", "progress": False, **kwargs})


def test_evaluate_takes_numpy_ints():
    result = evaluate("shapes", "shapes/geneval", images_per_prompt=np.int64(1), max_prompts=np.int64(1), progress=False)
    assert result.scores.shape == (6, 1)


def test_stratified_bootstrap_brackets_the_mean():
    rng = np.random.default_rng(0)
    groups = [rng.random(50), rng.random(80) + 1]
    interval = stratified_bootstrap(groups, lambda gs: float(np.mean([g.mean() for g in gs])), rng)
    assert interval.low < interval.mean < interval.high
    assert interval.high - interval.low < 0.2


def test_image_grid_tiles_and_scales():
    images = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    grid = image_grid(images, columns=2, scale=3)
    assert grid.shape == (3 * 2 * 3, 2 * 2 * 3, 3)
    np.testing.assert_array_equal(grid[:3, :3], np.broadcast_to(images[0, 0, 0], (3, 3, 3)))


def test_an_agent_is_evaluated_by_its_generator():
    import torch

    from cotimage.agents import GRPO, GRPOConfig

    agent = GRPO(config=GRPOConfig(batch_size=8))
    with torch.no_grad():
        agent.policy.head.bias[:128] += 3.0  # no longer the shipped generator
    kwargs = dict(images_per_prompt=2, max_prompts=2, progress=False)
    by_agent = evaluate(agent, "shapes/geneval", **kwargs)
    np.testing.assert_array_equal(by_agent.scores, evaluate(agent.generator, "shapes/geneval", **kwargs).scores)
    assert not np.array_equal(by_agent.scores, evaluate("shapes", "shapes/geneval", **kwargs).scores)


def test_a_grid_never_replaces_a_users_file_unless_asked(tmp_path):
    kwargs = {"images_per_prompt": 1, "max_prompts": 1, "progress": False}
    (tmp_path / "mine.png").write_text("the user's")
    with pytest.raises(FileExistsError, match="grid_path=.*mine.png' exists; pass overwrite=True"):
        evaluate("shapes", "shapes/geneval", grid_path=tmp_path / "mine.png", **kwargs)
    assert (tmp_path / "mine.png").read_text() == "the user's"
    with pytest.raises(ValueError, match="cannot be written: .*mine.png is a file"):
        evaluate("shapes", "shapes/geneval", grid_path=tmp_path / "mine.png" / "grid.png", **kwargs)
    evaluate("shapes", "shapes/geneval", grid_path=tmp_path / "mine.png", overwrite=True, **kwargs)
    evaluate("shapes", "shapes/geneval", grid_path=tmp_path / "new" / "grid.png", **kwargs)  # its directory is made
    assert (tmp_path / "mine.png").read_bytes()[:4] == (tmp_path / "new" / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_builds_no_autograd_graph(monkeypatch):
    generator = generators.load("shapes")
    seen = []
    decode = generator.decode
    monkeypatch.setattr(generator, "decode", lambda tokens: seen.append(torch.is_grad_enabled()) or decode(tokens))
    evaluate(generator, "shapes/geneval", images_per_prompt=1, max_prompts=1, progress=False)
    assert seen and not any(seen)
