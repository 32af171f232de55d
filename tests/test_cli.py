import json

import pytest

from cotimage import agents, evaluate
from cotimage.agents import GRPO
from cotimage.cli import main


def test_eval_writes_results_and_grid(tmp_path, capsys):
    main(["eval", "--suite", "shapes/geneval", "--max-prompts", "1", "--images-per-prompt", "1", "--out", str(tmp_path)])
    assert "**overall**" in capsys.readouterr().out
    result = json.loads((tmp_path / "shapes-geneval.json").read_text())
    assert result["suite"] == "shapes/geneval" and set(result["categories"]) >= {"counting", "position"}
    assert (tmp_path / "shapes-geneval.png").stat().st_size > 0


def test_eval_refuses_to_replace_earlier_results_unless_asked(tmp_path):
    argv = ["eval", "--suite", "shapes/geneval", "--max-prompts", "1", "--images-per-prompt", "1", "--out", str(tmp_path)]
    main(argv)
    first = (tmp_path / "shapes-geneval.json").read_text()
    with pytest.raises(SystemExit, match=r"shapes-geneval.json, .*shapes-geneval.png exist already; pass --overwrite"):
        main([*argv, "--seed", "7"])
    assert (tmp_path / "shapes-geneval.json").read_text() == first
    main([*argv, "--seed", "7", "--overwrite"])
    result = json.loads((tmp_path / "shapes-geneval.json").read_text())
    assert result["seed"] == 7 and result["generator"] == "shapes" and result["weights"] is None
    assert result["images_per_prompt"] == 1 and result["max_prompts"] == 1


def test_eval_scores_the_policy_of_a_trained_agent(tmp_path):
    main(["train", "grpo", "--total-images", "8", "--batch-size", "8", "--group-size", "4", "--learning-rate", "0.01",
          "--save", str(tmp_path / "agent"), "--tensorboard-log", str(tmp_path / "tb")])
    weights = str(tmp_path / "agent" / "policy.safetensors")
    main(["eval", "--suite", "shapes/geneval", "--max-prompts", "2", "--images-per-prompt", "2", "--weights", weights,
          "--out", str(tmp_path / "eval")])
    scores = json.loads((tmp_path / "eval" / "shapes-geneval.json").read_text())["overall"]
    kwargs = dict(images_per_prompt=2, max_prompts=2, progress=False)
    trained = evaluate(GRPO.load(tmp_path / "agent").generator, "shapes/geneval", **kwargs).overall
    assert scores["mean"] == pytest.approx(trained.mean)  # the saved policy's samples, not the shipped one's
    assert trained != evaluate("shapes", "shapes/geneval", **kwargs).overall
    with pytest.raises(SystemExit, match=r"^cotimage eval: --weights=.*reward_pref.safetensors: .* is not a shapes policy file"):
        main(["eval", "--weights", str(agents.__path__[0]) + "/../assets/reward_pref.safetensors"])


def test_train_takes_config_fields_and_refuses_to_overwrite(tmp_path):
    argv = ["train", "grpo", "--total-images", "8", "--save", str(tmp_path / "agent"), "--tensorboard-log", str(tmp_path / "tb")]
    main([*argv, "--batch-size", "8", "--group-size", "4"])
    saved = json.loads((tmp_path / "agent" / "agent.json").read_text())
    assert saved["config"]["group_size"] == 4 and saved["num_images"] == 8
    with pytest.raises(SystemExit, match="--save: .* already holds a saved agent; pass --overwrite to replace it"):
        main([*argv, "--batch-size", "8", "--group-size", "4"])
    main([*argv, "--batch-size", "8", "--group-size", "4", "--overwrite", "--seed", "3"])
    assert json.loads((tmp_path / "agent" / "agent.json").read_text())["seed"] == 3


def test_train_says_when_the_budget_is_rounded_up_and_refuses_a_file_as_log_directory(tmp_path, capsys):
    main(["train", "grpo", "--total-images", "12", "--batch-size", "8", "--group-size", "4", "--tensorboard-log", str(tmp_path / "tb")])
    assert "note: trains 16 images, not 12: training stops between updates of batch_size=8" in capsys.readouterr().err
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SystemExit, match="--tensorboard-log .*file is a file; name a directory"):
        main(["train", "grpo", "--total-images", "8", "--batch-size", "8", "--group-size", "4", "--tensorboard-log", str(tmp_path / "file")])
    with pytest.raises(SystemExit, match="--tensorboard-log .*file/tb: .*file is a file; name a directory"):
        main(["train", "grpo", "--total-images", "8", "--batch-size", "8", "--group-size", "4", "--tensorboard-log", str(tmp_path / "file" / "tb")])


def test_eval_names_an_out_that_is_a_file_and_a_weights_directory(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SystemExit, match="--out .*file is or lies under a file"):
        main(["eval", "--max-prompts", "1", "--out", str(tmp_path / "file")])
    with pytest.raises(SystemExit, match="is a directory, not a shapes policy file"):
        main(["eval", "--max-prompts", "1", "--weights", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^cotimage eval: --weights=.*nowhere: no shapes policy file"):
        main(["eval", "--max-prompts", "1", "--weights", str(tmp_path / "nowhere")])


def test_train_refuses_a_save_directory_of_other_files_before_training(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(GRPO, "learn", lambda *a, **k: pytest.fail("trained before checking --save"))
    with pytest.raises(SystemExit, match="not a saved agent"):
        main(["train", "grpo", "--save", str(tmp_path), "--batch-size", "8", "--group-size", "4"])


def test_train_rejects_a_bad_config_field_value(capsys):
    with pytest.raises(SystemExit):
        main(["train", "grpo", "--total-images", "8", "--batch-size", "8", "--group-size", "3"])
    assert "group_size=3 must divide batch_size=8" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "grpo", "--help"], ["train", "--help", "--seed", "1", "grpo"]])
def test_train_help_shows_the_common_options_then_the_agents_config_fields(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert "--total-images" in out and "--group-size" in out  # a common option, a GRPOConfig field
    assert out.index("--total-images") < out.index("--group-size")


def test_train_help_without_an_agent_lists_the_registered_agents(capsys, monkeypatch):
    registered = agents.registry()
    monkeypatch.setattr(agents, "registry", lambda: {**registered, "custom": GRPO})
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0 and "one of grpo, dpo, ppo, sb3ppo, reinforce, custom" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["train", "custom", "--help"])
    assert stop.value.code == 0 and "--group-size" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train"])
    assert "the following arguments are required: AGENT" in capsys.readouterr().err


def test_eval_rejects_unknown_arguments():
    with pytest.raises(SystemExit):
        main(["eval", "--nope"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--generator", "janus-pro", "--weights", "x"], r"^cotimage eval: --weights is for the generators \['shapes'\] only, not 'janus-pro'"),
    ],
)
def test_eval_reports_bad_values_by_name(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


@pytest.mark.parametrize("flag", ["--max-prompts", "--images-per-prompt", "--top-k"])
@pytest.mark.parametrize("value", ["0", "-2", "1.5"])
def test_eval_counts_are_argument_errors_naming_the_flag(flag, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval", flag, value])
    assert stop.value.code == 2 and f"argument {flag}: '{value}' is not an int >= 1" in capsys.readouterr().err


def test_a_train_budget_below_one_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "grpo", "--total-images", "-5"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --total-images: '-5' is not an int >= 1" in err and "note:" not in err


@pytest.mark.parametrize("command", [["eval"], ["train", "grpo"]])
@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_a_seed_out_of_range_is_an_argument_error(command, seed, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--seed", seed])
    assert stop.value.code == 2 and f"argument --seed: '{seed}' is no seed; use an int in [0, 2**63 - 1]" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["eval"], ["train", "grpo"], ["bench"]])
@pytest.mark.parametrize(
    ("device", "message"),
    [("foo", "'foo' is no device; use cpu, cuda or cuda:N"), ("cuda:99", "'cuda:99': ")],
)
def test_a_bad_device_is_an_argument_error(command, device, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command, "--device", device])
    assert stop.value.code == 2 and f"argument --device: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["eval", "--out", ""], ["train", "grpo", "--save", ""], ["train", "grpo", "--tensorboard-log", ""],
     ["bench", "--preset", "quick", "--out", ""], ["collect-pairs", "--out", ""]],
)
def test_an_empty_output_path_is_an_argument_error_not_the_current_directory(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and "'' is no path; name a file or directory" in capsys.readouterr().err
