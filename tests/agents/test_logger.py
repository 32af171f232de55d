from cotimage.agents.common.logger import next_run_dir


def test_the_next_run_is_one_past_the_highest_not_the_count(tmp_path):
    assert next_run_dir(tmp_path, "eval") == tmp_path / "eval_1"
    (tmp_path / "eval_1").mkdir()
    (tmp_path / "eval_2").mkdir()
    (tmp_path / "eval_1").rmdir()
    assert next_run_dir(tmp_path, "eval") == tmp_path / "eval_3"  # counting would reuse eval_2


def test_only_runs_of_that_name_count(tmp_path):
    for name in ("eval_2", "eval_x", "eval_5_old", "evaluation_1", "train_7"):
        (tmp_path / name).mkdir()
    (tmp_path / "eval_9").touch()  # a file, not a run
    assert next_run_dir(tmp_path, "eval") == tmp_path / "eval_3"
    assert next_run_dir(tmp_path, "evaluation") == tmp_path / "evaluation_2"
    assert next_run_dir(tmp_path, "ev?l") == tmp_path / "ev?l_1"  # the name is literal, not a glob or regex
