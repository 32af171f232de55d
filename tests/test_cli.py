import json

import pytest

from cotimage.cli import main


def test_eval_writes_results_and_grid(tmp_path, capsys):
    main(["eval", "--suite", "shapes/geneval", "--max-prompts", "1", "--images-per-prompt", "1", "--out", str(tmp_path)])
    assert "**overall**" in capsys.readouterr().out
    result = json.loads((tmp_path / "shapes-geneval.json").read_text())
    assert result["suite"] == "shapes/geneval" and set(result["categories"]) >= {"counting", "position"}
    assert (tmp_path / "shapes-geneval.png").stat().st_size > 0


def test_train_takes_config_fields_and_refuses_to_overwrite(tmp_path):
    argv = ["train", "grpo", "--total-images", "8", "--save", str(tmp_path / "agent"), "--tensorboard-log", str(tmp_path / "tb")]
    main([*argv, "--batch-size", "8", "--group-size", "4"])
    saved = json.loads((tmp_path / "agent" / "agent.json").read_text())
    assert saved["config"]["group_size"] == 4 and saved["num_images"] == 8
    with pytest.raises(SystemExit, match="already holds"):
        main([*argv, "--batch-size", "8", "--group-size", "4"])


def test_train_rejects_a_bad_config_field_value(capsys):
    with pytest.raises(SystemExit):
        main(["train", "grpo", "--total-images", "8", "--batch-size", "8", "--group-size", "3"])
    assert "group_size=3 must divide batch_size=8" in capsys.readouterr().err


def test_eval_rejects_unknown_arguments():
    with pytest.raises(SystemExit):
        main(["eval", "--nope"])
