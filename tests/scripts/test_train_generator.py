import importlib.util
import inspect
from pathlib import Path

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
