import subprocess

import pytest

from benchmarks import common


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with a results file, standing in for this checkout."""
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "speed.jsonl").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.chdir("/")  # git must run in the repository, not where the script started
    return tmp_path


def test_a_results_line_leaves_the_commit_clean_and_a_code_change_does_not(repo):
    clean = common.commit_id()
    assert clean and not clean.endswith("-dirty")
    (repo / "benchmarks" / "results" / "speed.jsonl").write_text("{}\n{}\n")  # an earlier benchmark's line
    assert common.commit_id() == clean
    (repo / "code.py").write_text("x = 2\n")
    assert common.commit_id() == clean + "-dirty"


def test_the_machine_names_its_cpu():
    assert common.cpu_model() and common.cpu_model() != "unknown CPU"


def test_a_tree_without_git_still_gets_its_results_line(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path / "benchmarks" / "results")
    assert common.commit_id() == "unknown (no git checkout)"
