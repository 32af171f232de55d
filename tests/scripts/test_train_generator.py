import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

from cotimage.generators.shapes import BOS, PAD, WordTokenizer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_generator.py"
spec = importlib.util.spec_from_file_location("train_generator", SCRIPT)
train_generator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_generator)


def test_the_docstring_promises_only_what_the_script_prints():
    doc, source = train_generator.__doc__, inspect.getsource(train_generator.main)
    assert "scores of the result" not in doc and "evaluate" not in source  # it trains and saves, nothing more
    assert "prints the loss every" in doc and 'print(f"step ' in source and 'print(f"wrote ' in source


def test_prompt_dropout_keeps_the_bos_the_tokenizer_sets():
    prompts = WordTokenizer()(["a red circle", "two small squares above a cross"])
    ids, mask = prompts.ids.clone(), prompts.mask.clone()
    ids[:, 1:], mask[:, 1:] = PAD, False  # the script's prompt dropout, here of every prompt
    assert (ids[:, 0] == BOS).all() and mask[:, 0].all()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "-1"], "argument --steps: '-1' is not an int >= 1"),  # once: untrained weights written
        (["--log-every", "0"], "argument --log-every"),
        (["--lr", "0"], "--lr 0.0 must be a finite number > 0"),
    ],
)
def test_bad_arguments_stop_the_script_before_training(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_generator, "dataset", lambda *a: pytest.fail("built the data before checking"))
    monkeypatch.setattr(sys, "argv", ["train_generator.py", *argv, "--out", str(tmp_path / "g.safetensors")])
    with pytest.raises(SystemExit):
        train_generator.main()
    assert message in capsys.readouterr().err


def test_an_out_that_is_a_directory_is_named_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_generator, "dataset", lambda *a: pytest.fail("built the data before checking"))
    monkeypatch.setattr(sys, "argv", ["train_generator.py", "--out", str(tmp_path), "--force"])
    with pytest.raises(SystemExit):
        train_generator.main()
    assert f"--out: {tmp_path} is a directory" in capsys.readouterr().err
