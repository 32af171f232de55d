import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from cotimage import rewards
from cotimage.rewards.generalization import RankingSet
from cotimage.shapes import check, render
from cotimage.suites import load

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_rewards.py"
spec = importlib.util.spec_from_file_location("train_rewards", SCRIPT)
train_rewards = importlib.util.module_from_spec(spec)
sys.modules["train_rewards"] = train_rewards  # so worker processes can find its functions
spec.loader.exec_module(train_rewards)


def test_augmentation_keeps_the_checkers_verdict():
    records = load("shapes/compbench-val")[:40]
    rng = np.random.default_rng(0)
    images = np.stack([render(r.spec, rng) for r in records])
    texts = [r.text for r in records]
    indices = train_rewards.palette_index(images)
    augmented = [
        train_rewards.apply_augmentation(i, r.text, *train_rewards.draw_augmentation(rng, [r.spec]))
        for i, r in zip(indices, records)
    ]
    assert any(text != new for text, (_, new) in zip(texts, augmented))
    for (image, text), record in zip(augmented, records):
        assert check(image, text).passed  # recoloured and mirrored alike, the new prompt still holds
        assert check(image, record.text).passed == (text == record.text)


def test_augmentation_never_names_a_held_out_composition():
    from cotimage.shapes import parse
    from cotimage.suites.build import HELD_OUT

    rng = np.random.default_rng(0)
    index = np.zeros((32, 32), np.uint8)
    for record in load("shapes/compbench-train")[:300]:
        _, text = train_rewards.apply_augmentation(index, record.text, *train_rewards.draw_augmentation(rng, [record.spec]))
        named = {(o.color, o.shape) for o in parse(text).objects if o.color}
        assert not named & HELD_OUT, text


def test_edits_change_one_object_or_mirror_the_image():
    image = render("a red circle to the left of a blue square", seed=0)
    index = train_rewards.palette_index(image[None])[0]
    rng = np.random.default_rng(0)
    edits = [train_rewards.edit(index, rng) for _ in range(30)]
    assert any(np.array_equal(e, index[:, ::-1]) for e in edits)
    assert any((e > 0).sum() < (index > 0).sum() for e in edits)  # an object erased
    assert any(not check(train_rewards.PALETTE[e], "a red circle to the left of a blue square").passed for e in edits)


def test_counterfactuals_are_checked_and_the_same_for_any_number_of_workers():
    records = load("shapes/compbench-val")[:3]
    images = np.stack([render(r.spec, seed=i) for r in records for i in range(2)])
    data = RankingSet(tuple(records), images, np.ones((3, 2), np.float32))
    one = train_rewards.Counterfactuals.build(data, per_image=3, seed=0, workers=1)
    two = train_rewards.Counterfactuals.build(data, per_image=3, seed=0, workers=2)
    assert one.index.shape == (3, 6, 32, 32) and one.checker.shape == (3, 6)
    np.testing.assert_array_equal(one.index, two.index)
    for p, record in enumerate(records):
        for image, score in zip(one.index[p], one.checker[p]):
            assert check(train_rewards.PALETTE[image], record.spec).score == score
    assert (one.checker < 1).any()  # renders pass; some counterfactuals do not


def test_captions_describe_what_the_checker_sees():
    rng = np.random.default_rng(0)
    image = render("two red circles and a blue square above a green triangle", seed=1)
    scene = train_rewards.caption(image, rng)
    assert sorted(o.shape for o in scene.objects) == ["circle", "square", "triangle"]
    assert check(image, scene).passed


def test_a_tiny_run_writes_loadable_fp16_weights_and_refuses_to_overwrite(tmp_path, capsys):
    args = ["--prompts", "5", "--images-per-prompt", "2", "--steps", "1", "--batch", "8", "--eval-prompts", "6",
            "--out-dir", str(tmp_path), "--data", str(tmp_path / "set.npz"), "--workers", "2"]
    train_rewards.main(args)
    assert "| pref-narrow |" in capsys.readouterr().out
    for name in train_rewards.MODELS:
        path = train_rewards.output_path(tmp_path, name)
        with safe_open(str(path), "pt") as f:
            assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}  # noqa: SIM118 (safe_open is no dict)
            recipe = json.loads(f.metadata()["recipe"])
            assert recipe["images_per_prompt"] == 2
            assert ("foreign" in recipe) == (name in train_rewards.POOLED)  # pref-narrow: fresh edits, no pool
        assert rewards.make(name, weights=path).name == name
    with pytest.raises(SystemExit):
        train_rewards.main(args)  # the weights exist now
    train_rewards.main(["pref", *args, "--force"])  # and the generated set is reused from set.npz


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "argument --steps: '0' is not an int >= 1"),
        (["--steps", "-1"], "argument --steps: '-1' is not an int >= 1"),  # once: no step, then untrained weights written
        (["--eval-prompts", "0"], "argument --eval-prompts"),
        (["--log-every", "0"], "argument --log-every"),
        (["pref", "--batch", "10"], "--batch 10 must be a multiple of 2 x --images-per-prompt = 16"),
        (["--images-per-prompt", "1"], "--images-per-prompt 1 must be >= 2"),
        (["--device", "cuda:99"], "argument --device"),
        (["--data", "/no/such/dir/set.npz"], "--data /no/such/dir/set.npz: its directory /no/such/dir does not exist"),
    ],
)
def test_bad_arguments_stop_the_script_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_rewards, "training_set", lambda *a: pytest.fail("generated before checking"))
    with pytest.raises(SystemExit):
        train_rewards.main([*argv, "--out-dir", str(tmp_path)])
    assert message in capsys.readouterr().err


def test_an_out_dir_that_is_a_file_is_named_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SystemExit):
        train_rewards.main(["orm", "--out-dir", str(tmp_path / "file")])
    assert "--out-dir: " in capsys.readouterr().err and (tmp_path / "file").read_text() == "mine"


def test_a_cached_set_of_another_checker_version_is_refused(tmp_path, monkeypatch):
    cache = tmp_path / "set.npz"
    train_rewards.training_set(5, 2, 0, cache)
    monkeypatch.setattr(train_rewards, "CHECKER_VERSION", train_rewards.CHECKER_VERSION + 1)
    with pytest.raises(ValueError, match="made with another checker version or generator weights"):
        train_rewards.training_set(5, 2, 0, cache)


def test_narrow_variant_trains_on_a_few_prompts_of_every_category_of_its_training_set():
    train = load("shapes/compbench-train")
    keep = train_rewards.prompt_set("pref-narrow", train, seed=0)
    records = [r for r in train if keep(r)]
    assert len(records) == train_rewards.NARROW_PROMPTS
    per_category = {c: sum(r.category == c for r in records) for c in {r.category for r in train}}
    assert sorted(per_category.values()) == [train_rewards.NARROW_PROMPTS // 5] * 5
    assert set(filter(train_rewards.prompt_set("pref-narrow", train, seed=0), train)) == set(records)  # reproducible
    subset = train[:300]  # a smaller training set (--prompts): the narrow set is drawn from it
    assert sum(map(train_rewards.prompt_set("pref-narrow", subset, seed=1), subset)) == train_rewards.NARROW_PROMPTS
    assert all(map(train_rewards.prompt_set("pref", train, seed=0), train))
