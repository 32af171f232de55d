import json
from collections import Counter

import pytest

from cotimage import suites
from cotimage.shapes.grammar import GENEVAL_OPENER
from cotimage.suites import build

TRAIN, VAL, GENEVAL = suites.NAMES


def compositions(name: str) -> set[tuple[str, str]]:
    """The (colour, shape) pairs the specs of a suite name."""
    return {(obj.color, obj.shape) for r in suites.load(name) for obj in r.spec.objects if obj.color is not None}


@pytest.mark.parametrize("name, minimum", [(TRAIN, 5000), (VAL, 1000), (GENEVAL, 500)])
def test_suite_sizes(name, minimum):
    assert len(suites.load(name)) >= minimum


@pytest.mark.parametrize(
    "name, sizes",
    [
        (TRAIN, dict.fromkeys(build.COMPBENCH_CATEGORIES, build.COMPBENCH_SIZES["train"])),
        (VAL, dict.fromkeys(build.COMPBENCH_CATEGORIES, build.COMPBENCH_SIZES["val"])),
        (GENEVAL, build.GENEVAL_SIZES),
    ],
)
def test_suite_categories(name, sizes):
    assert suites.categories(name) == list(sizes)
    assert Counter(r.category for r in suites.load(name)) == sizes


@pytest.mark.parametrize("name, split", [(TRAIN, "train"), (VAL, "val"), (GENEVAL, "test")])
def test_suite_splits(name, split):
    assert {r.split for r in suites.load(name)} == {split}


def test_build_reproduces_the_shipped_files():
    for name, records in build.build().items():
        lines = [json.dumps(r, sort_keys=True) for r in records]
        assert lines == suites.suite_path(name).read_text().splitlines(), name


def test_unknown_suite_error_lists_known_suites():
    with pytest.raises(ValueError, match="suite='shapes/nope' is unknown") as error:
        suites.load("shapes/nope")
    for name in suites.NAMES:
        assert repr(name) in str(error.value)


@pytest.mark.parametrize("name", [TRAIN, VAL])
def test_compbench_texts_are_distinct(name):
    texts = [r.text for r in suites.load(name)]
    assert len(set(texts)) == len(texts)


def test_val_texts_disjoint_from_train_texts():
    assert not {r.text for r in suites.load(VAL)} & {r.text for r in suites.load(TRAIN)}


def test_geneval_template_opener_is_never_used_by_compbench():
    assert all(r.text.startswith(GENEVAL_OPENER + " ") for r in suites.load(GENEVAL))
    assert not [r.text for name in (TRAIN, VAL) for r in suites.load(name) if GENEVAL_OPENER in r.text]


def test_geneval_holds_compositions_unseen_in_training():
    geneval = compositions(GENEVAL)
    assert len(geneval - compositions(TRAIN)) >= 0.2 * len(geneval)


@pytest.mark.parametrize("name", [TRAIN, VAL])
def test_compbench_never_names_a_held_out_composition(name):
    assert not compositions(name) & build.HELD_OUT


@pytest.fixture
def tiny_build(tmp_path, monkeypatch):
    """build.main over two one-prompt suites written under tmp_path."""
    records = {"a/one": [{"text": "a circle"}], "a/two": [{"text": "a square"}]}
    monkeypatch.setattr(build, "build", lambda: records)
    monkeypatch.setattr(build, "suite_path", lambda name: tmp_path / f"{name.replace('/', '-')}.v1.jsonl")
    return tmp_path, records


def test_build_writes_missing_suites_and_leaves_unchanged_ones(tiny_build, capsys):
    folder, _ = tiny_build
    build.main([])
    assert (folder / "a-one.v1.jsonl").read_text() == '{"text": "a circle"}\n'
    build.main([])
    assert capsys.readouterr().out.count("unchanged") == 2


def test_build_never_replaces_a_changed_suite_without_force(tiny_build, capsys):
    folder, records = tiny_build
    build.main([])
    (folder / "a-two.v1.jsonl").unlink()
    records["a/one"] = [{"text": "a red circle"}]
    with pytest.raises(SystemExit):
        build.main([])
    assert "a-one.v1.jsonl would change; pass --force" in capsys.readouterr().err
    assert (folder / "a-one.v1.jsonl").read_text() == '{"text": "a circle"}\n'
    assert not (folder / "a-two.v1.jsonl").exists()  # nothing is written when one file would change
    build.main(["--force"])
    assert (folder / "a-one.v1.jsonl").read_text() == '{"text": "a red circle"}\n'
    assert (folder / "a-two.v1.jsonl").is_file()
