import dataclasses
import json
import re

import numpy as np
import pytest

from cotimage import bench, rewards
from cotimage.bench import presets, runner
from cotimage.bench.grid import Cell, Preset, Variant
from cotimage.cli import main as cli_main

TINY = Preset(
    "tiny",
    ("base", "best-of-2", "grpo"),
    seeds=2,
    budget=16,
    batch_size=8,
    eval_every=8,
    eval_prompts=1,
    eval_images_per_prompt=1,
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, bench.main(TINY, out, progress=False)


def test_a_grid_writes_cells_results_plots_and_tensorboard(grid):
    out, results = grid
    cells = sorted(p.stem for p in (out / "cells").glob("*.json"))
    assert cells == ["base", "best-of-2__scene", "grpo__scene__default__s0", "grpo__scene__default__s1"]
    for name in ("results.json", "results.csv", "results.md", *bench.report.PLOTS):
        assert (out / name).stat().st_size > 0
    for name in bench.report.PLOTS:
        assert (out / name).read_bytes().startswith(PNG)
    assert json.loads((out / "results.json").read_text()) == results
    assert len((out / "results.csv").read_text().splitlines()) == 1 + len(results["groups"])
    markdown = (out / "results.md").read_text()
    assert "## In-domain" in markdown and "## Out-of-domain" in markdown and "| scene | default | grpo | best-of-2 |" in markdown
    assert list((out / "tb" / "grpo__scene__default__s0").glob("train_1/events.*"))
    assert list((out / "tb" / "grpo__scene__default__s0").glob("eval_1/events.*"))


def test_a_trained_cell_starts_at_the_base_score_and_evaluates_on_schedule(grid):
    out, results = grid
    base = json.loads((out / "cells" / "base.json").read_text())
    cell = json.loads((out / "cells" / "grpo__scene__default__s1.json").read_text())
    assert [p["images"] for p in cell["curve"]] == [0, 8, 16]
    assert cell["curve"][0]["in_domain"]["overall"] == base["final"]["in_domain"]["overall"]
    assert set(cell["final"]["out_of_domain"]["categories"]) >= {"counting", "position"}
    assert 0 <= cell["final"]["in_domain"]["strict"] <= cell["final"]["in_domain"]["overall"]["mean"] <= 1
    grpo = next(g for g in results["groups"] if g["agent"] == "grpo")
    assert grpo["runs"] == 2 and grpo["seeds"] == [0, 1] and grpo["curve"]["images"] == [0, 8, 16]
    assert grpo["in_domain"]["gain_mean"] is not None


def test_a_rerun_skips_finished_cells(grid, monkeypatch):
    out, results = grid

    def no_training(*args):
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(runner, "run_cell", no_training)
    assert bench.main(TINY, out, progress=False)["groups"] == results["groups"]


def test_a_cell_another_grid_finished_meanwhile_is_not_rerun(grid, monkeypatch):
    out, _ = grid
    cell = TINY.cells()[-1]
    saved = json.loads(runner.cell_path(out, cell).read_text())
    monkeypatch.setattr(runner, "evaluate_cell", lambda *args: pytest.fail("a finished cell ran again"))
    assert runner.run_cell(TINY, cell, out) == saved


def test_cell_settings_record_the_training_rewards_weights():
    cell = next(c for c in dataclasses.replace(TINY, rewards=("scene+0.5*pref",)).cells() if c.agent == "grpo")
    assert TINY.cell_settings(cell)["reward_weights"] == rewards.weights_digest("scene+0.5*pref") != {}
    assert "reward_weights" not in TINY.cell_settings(TINY.cells()[0])  # base has no reward


def test_cell_settings_record_the_checker_version():
    from cotimage.shapes import CHECKER_VERSION

    assert all(TINY.cell_settings(cell)["eval"]["checker"] == CHECKER_VERSION for cell in TINY.cells())


def test_cell_settings_tell_generator_weights_apart(tmp_path, monkeypatch):
    cell = TINY.cells()[0]
    assert TINY.cell_settings(cell)["generator_weights"] == {"shapes_generator.safetensors": runner._FIRST_SHAPES_WEIGHTS[
        "shapes_generator.safetensors"]}  # unchanged since the first cells were saved
    janus = dataclasses.replace(TINY, generator="janus-pro")
    digests = []
    for size in ("1B", "7B"):  # one generator name, two models
        (tmp_path / size).mkdir()
        (tmp_path / size / "config.json").write_text(json.dumps({"size": size}))
        monkeypatch.setenv("COTIMAGE_JANUS_PATH", str(tmp_path / size))
        digests.append(janus.cell_settings(cell)["generator_weights"])
    assert digests[0] != digests[1] and digests[0]["path"].endswith("1B")


def test_a_variants_other_agents_are_no_cell_setting():
    both = dataclasses.replace(TINY, agents=("grpo", "dpo"), variants=(Variant("v", {"learning_rate": 1e-4}, agents=("grpo", "dpo")),))
    grpo_only = both.with_agents(["grpo"])
    cell = grpo_only.cells()[0]
    assert grpo_only.variants[0].agents == ("grpo",) and both.cell_settings(cell) == grpo_only.cell_settings(cell)


def test_cells_saved_by_the_previous_version_still_match(tmp_path):
    # Before: the variant's agents in its settings, no generator_weights (the shapes weights shipped first).
    cell = next(c for c in TINY.cells() if c.agent == "grpo")
    settings = TINY.cell_settings(cell)
    old = {k: v for k, v in settings.items() if k != "generator_weights"} | {"variant": {**settings["variant"], "agents": None}}
    path = runner.cell_path(tmp_path, cell)
    path.parent.mkdir()
    path.write_text(json.dumps({"format": runner.CELL_FORMAT, "settings": old, "final": {}}))
    assert runner.load_finished(TINY, [cell], tmp_path)[cell.id]["settings"] == old
    janus = dataclasses.replace(TINY, generator="janus-pro")
    path.write_text(json.dumps({"format": runner.CELL_FORMAT, "settings": old | {"generator": "janus-pro"}}))
    with pytest.raises(FileExistsError, match=r"differing: \['generator_weights'\]"):  # which Janus it was is unknown
        runner.load_finished(janus, [cell], tmp_path)


def test_grids_sharing_a_cell_store_reuse_its_cells(grid, tmp_path, monkeypatch):
    store, results = grid
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a shared cell ran again"))
    smaller = dataclasses.replace(TINY, name="subset", agents=("base", "grpo"))
    report = bench.main(smaller, tmp_path / "subset", progress=False, cells=store)
    assert (tmp_path / "subset" / "results.md").is_file() and not (tmp_path / "subset" / "cells").exists()
    assert [g for g in report["groups"] if g["agent"] == "grpo"] == [g for g in results["groups"] if g["agent"] == "grpo"]


def test_a_saved_cell_with_other_settings_is_never_overwritten(grid):
    out, _ = grid
    path = out / "cells" / "grpo__scene__default__s0.json"
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"other settings \(differing: \['budget', 'eval_points'\]\)"):
        bench.main(dataclasses.replace(TINY, budget=24), out, progress=False, overwrite=True)  # a report, not a cell
    assert path.read_bytes() == before


@pytest.mark.parametrize("settings_change", [{}, {"eval_prompts": 2}])
def test_a_cell_another_grid_saves_while_it_runs_is_never_replaced(grid, tmp_path, monkeypatch, settings_change):
    out, _ = grid
    cell = Cell("base")
    other = json.loads(runner.cell_path(out, cell).read_text())
    other["settings"] = json.loads(json.dumps(dataclasses.replace(TINY, **settings_change).cell_settings(cell)))
    summary = {"suite": "s", "overall": {"mean": 0.0}, "strict": 0.0, "categories": {}}

    def evaluate_while_another_grid_saves(*args):
        path = runner.cell_path(tmp_path, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(other))
        return {"in_domain": summary, "out_of_domain": summary}

    monkeypatch.setattr(runner, "evaluate_cell", evaluate_while_another_grid_saves)
    if settings_change:
        with pytest.raises(FileExistsError, match=r"other settings \(differing: \['eval'\]\)"):
            runner.run_cell(TINY, cell, tmp_path)
    else:
        assert runner.run_cell(TINY, cell, tmp_path) == other
    assert json.loads(runner.cell_path(tmp_path, cell).read_text()) == other
    assert [p.name for p in (tmp_path / "cells").iterdir()] == ["base.json"]  # no temporary file left


def test_a_cell_file_of_another_format_is_refused_naming_both_formats(grid, tmp_path):
    out, _ = grid
    cell = Cell("base")
    record = json.loads(runner.cell_path(out, cell).read_text()) | {"format": runner.CELL_FORMAT + 1}
    path = runner.cell_path(tmp_path, cell)
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    formats = f"of format {runner.CELL_FORMAT + 1}, and this version reads format {runner.CELL_FORMAT}"
    message = re.escape(f"{path} is a cell record {formats}")
    with pytest.raises(FileExistsError, match=message):
        bench.run(TINY, tmp_path, progress=False)
    assert json.loads(path.read_text()) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agents": ("nope",)}, r"agent='nope' is unknown; allowed: \['grpo', .*'base', 'best-of-N"),
        ({"agents": ("best-of-1",)}, "N >= 2"),
        ({"rewards": ("nope",)}, r"reward='nope' is unknown; registered rewards: \["),
        ({"rewards": ("scene+nope",)}, "registered rewards"),
        ({"seeds": 0}, "seeds=0 must be an int >= 1"),
        ({"eval_prompts": np.int64(1)}, r"eval_prompts=np.int64\(1\) must be an int >= 1"),  # saved as JSON
        ({"generator": "nope"}, r"generator='nope' is unknown; generators: \["),
        ({"variants": (Variant("v", {"nope": 1}),)}, r"overrides \['nope'\] are no config field"),
        ({"variants": (Variant("v", train_categories=("nope",)),)}, r"must be a non-empty subset of \['color'"),
        ({"variants": (Variant("v", {"group_size": 3}),)}, "group_size=3 must divide batch_size=8"),
        ({"agent_budgets": {"dpo": 8}}, "not trained agents of this preset"),
        ({"agent_budgets": {"grpo": 0}}, r"agent_budgets\['grpo'\]=0 must be an int >= 1"),
        ({"budget": 12}, r"budget=12 is not a multiple of grpo's batch_size=8, .*so it would train 16 images"),
        ({"agent_budgets": {"grpo": 12}}, r"agent_budgets\['grpo'\]=12 is not a multiple of grpo's batch_size=8"),
        ({"agent_overrides": {"grpo": {"batch_size": 16}}}, "eval_every=8 is not a multiple of grpo's batch_size=16"),
        ({"agent_overrides": {"grpo": {"nope": 1}}}, r"agent_overrides\['grpo'\]: \['nope'\] are no config field of grpo; fields: \["),
        ({"variants": ()}, r"no variant of preset 'tiny' applies to \['grpo'\]"),
        ({"variants": (Variant(), Variant())}, "must have distinct names"),
        ({"agents": ("best-of-04",)}, "agent='best-of-04' is unknown"),  # best-of-4 has one name
        ({"eval_seed": -1}, "eval_seed=-1 must be an int >= 0"),
        ({"eval_every": None}, "eval_every=None must be an int >= 0"),
        ({"generalization_prompts": -1}, r"generalization_prompts=-1 must be None \(no finding 2 table\) or an int >= 1"),
        ({"variants": (Variant(5),)}, "variant name 5 must be letters"),
        ({"variants": (Variant("v", None),)}, "overrides=None must be a dict"),
        ({"variants": (Variant("v", train_prompts=2.5),)}, "train_prompts=2.5 must be None or an int >= 1"),
        ({"variants": ("v",)}, "variants must hold Variant"),
        ({"rewards": None}, "rewards=None must be a non-empty tuple"),
        ({"variants": (Variant("v", {"learning_rate": np.float32(1e-4)}),)},
         r"cell grpo__scene__v__s0: its settings cannot be saved as JSON"),  # found before training, not after
    ],
)
def test_bad_grids_raise_naming_the_allowed_values(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change).validate()


def test_an_iterative_dpo_round_must_divide_the_budget():
    with pytest.raises(ValueError, match=r"budget=1088 is not a multiple of dpo's round of 320 images .* in variant 'r4'"):
        dataclasses.replace(presets.get("finding3"), budget=1088).validate()  # r4: 4 rounds of 34 prompts x 8, 1,280 images


def test_with_agents_keeps_the_variants_that_apply_to_them():
    sweep = presets.get("lr-sweep")
    grpo = sweep.with_agents(["base", "grpo"])
    assert [v.name for v in grpo.variants] == ["g-lr3e-5", "g-lr1e-4-none", "g-lr6e-5"]
    base = sweep.with_agents(["base"])  # baselines have no variants: none is left, and none is needed
    base.validate()
    assert base.variants == () and base.cells() == [Cell("base")]
    quick = presets.get("quick")
    assert quick.with_agents(quick.agents) == quick
    assert quick.with_agents(["base"]).variants == quick.variants
    with pytest.raises(ValueError, match=r"no variant of preset 'lr-sweep' applies to \['ppo'\]; .*'g-lr3e-5': \['grpo'\]"):
        sweep.with_agents(["base", "ppo"])
    with pytest.raises(ValueError, match="agent='nope' is unknown"):
        sweep.with_agents(["nope"])


def test_presets_are_valid_and_unknown_names_raise():
    for preset in presets.PRESETS.values():
        preset.validate()
    with pytest.raises(ValueError, match=r"preset='nope' is unknown; presets: \['quick'"):
        presets.get("nope")
    with pytest.raises(ValueError, match="workers=0 must be an int >= 1"):
        bench.run(TINY, "unused", workers=0)


def test_dpo_rounds_set_the_iterative_round_size():
    preset = dataclasses.replace(presets.get("finding3"), budget=1024)
    r4 = next(c for c in preset.cells() if c.variant.name == "r4")
    config = preset.config(r4)
    assert (config.mode, config.samples_per_prompt, config.prompts_per_round) == ("iterative", 8, 1024 // (4 * 8))
    spatial = next(v for v in preset.variants if v.name == "p64-spatial")
    prompts = preset.train_prompts(spatial)
    assert len(prompts) == 64 and {r.category for r in prompts} == {"spatial"}


def test_cli_lists_presets_and_rejects_unknown_ones(capsys):
    cli_main(["bench", "--list"])
    assert "finding2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["bench", "--preset", "nope"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--preset", "lr-sweep", "--agents", "base", "ppo"], r"no variant of preset 'lr-sweep' applies to \['ppo'\]"),
        (["--budget", "3"], r"budget=3 is not a multiple of grpo's batch_size=32"),
    ],
)
def test_cli_rejects_a_grid_before_running_it(options, message, tmp_path):
    with pytest.raises(SystemExit, match=f"^cotimage bench: {message}"):
        cli_main(["bench", *options, "--out", str(tmp_path)])
    assert not (tmp_path / "cells").exists()


def test_finding2_adds_ranking_accuracy_and_its_plot(grid, tmp_path):
    out, _ = grid
    preset = dataclasses.replace(TINY, generalization_prompts=5)
    results = bench.report.write_report(preset, runner.load_finished(preset, preset.cells(), out), tmp_path)
    assert results["generalization"][0]["spec"] == "scene"
    assert "## Finding 2" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "finding2.png").read_bytes().startswith(PNG)


def test_finding2_ranking_accuracy_is_reused_until_its_inputs_change(grid, tmp_path, monkeypatch):
    out, _ = grid
    preset = dataclasses.replace(TINY, generalization_prompts=5)
    records = runner.load_finished(preset, preset.cells(), out)
    first = bench.report.write_report(preset, records, tmp_path)["generalization"]
    monkeypatch.setattr(bench.report, "generalization", lambda _: pytest.fail("recomputed an unchanged ranking accuracy"))
    assert bench.report.write_report(preset, records, tmp_path)["generalization"] == first
    calls = []
    monkeypatch.setattr(bench.report, "generalization", lambda p: calls.append(p) or first)
    bench.report.write_report(dataclasses.replace(preset, generalization_prompts=6), records, tmp_path, overwrite=True)
    assert len(calls) == 1
    monkeypatch.setattr("cotimage.shapes.CHECKER_VERSION", 99)  # accuracy against another checker
    bench.report.write_report(dataclasses.replace(preset, generalization_prompts=6), records, tmp_path)
    assert len(calls) == 2


def test_a_report_of_another_grid_is_replaced_only_with_overwrite(grid, tmp_path, monkeypatch):
    store, _ = grid
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a cell ran"))
    bench.main(TINY, tmp_path, progress=False, cells=store)
    before = (tmp_path / "results.json").read_bytes()
    assert bench.main(TINY, tmp_path, progress=False, cells=store)["preset"]["agents"] == list(TINY.agents)  # same grid
    narrower = TINY.with_agents(["base", "grpo"])
    with pytest.raises(FileExistsError, match=r"results.json is the report of another grid \(differing: \['agents'\]\)"):
        bench.main(narrower, tmp_path, progress=False, cells=store)
    with pytest.raises(FileExistsError, match=r"differing: \['seeds'\]"):  # refused before its new cell runs
        bench.main(dataclasses.replace(TINY, seeds=3), tmp_path, progress=False, cells=store)
    assert (tmp_path / "results.json").read_bytes() == before
    results = bench.main(narrower, tmp_path, progress=False, cells=store, overwrite=True)
    assert [g["agent"] for g in json.loads((tmp_path / "results.json").read_text())["groups"]] == ["base", "grpo"]
    assert [g["agent"] for g in results["groups"]] == ["base", "grpo"]


def test_a_grid_of_baselines_without_variants_still_compares_them(grid):
    out, results = grid
    baselines = dataclasses.replace(TINY, variants=(Variant("v", agents=("grpo",)),)).with_agents(["base", "best-of-2"])
    assert baselines.variants == ()
    pairs = bench.report.aggregate(baselines, runner.load_finished(baselines, baselines.cells(), out))["improvement"]
    expected = next(p for p in results["improvement"] if (p["a"], p["b"]) == ("best-of-2", "base"))
    assert [(p["a"], p["b"], p["variant"]) for p in pairs] == [("best-of-2", "base", "-")]
    assert pairs[0]["in_domain"] == expected["in_domain"]


def test_report_files_without_a_results_json_are_not_replaced(grid, tmp_path):
    (tmp_path / "results.md").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"holds \['results.md'\] without the results.json of a report"):
        bench.report.check_replaceable(TINY, tmp_path)
    assert (tmp_path / "results.md").read_text() == "my notes"


def test_an_out_or_cells_that_is_a_file_is_named_before_any_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a cell ran"))
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="out=.*file' is or lies under a file"):
        bench.main(TINY, tmp_path / "file", progress=False)
    with pytest.raises(ValueError, match="cells=.*lies under a file"):
        bench.main(TINY, tmp_path / "out", progress=False, cells=tmp_path / "file" / "cells")


def test_main_names_a_bad_preset_overwrite_or_empty_out_before_any_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a cell ran"))
    with pytest.raises(ValueError, match="preset='quick' must be a Preset"):
        bench.main("quick", tmp_path)
    with pytest.raises(ValueError, match="overwrite='no' must be True or False"):
        bench.main(TINY, tmp_path, overwrite="no")
    with pytest.raises(ValueError, match="out='' must be a non-empty path"):
        bench.main(TINY, "")


@pytest.mark.parametrize("content", [None, "[]", "{"])  # None: a directory where the cell file goes
def test_a_cell_path_that_holds_no_record_is_named_before_any_cell_runs(tmp_path, monkeypatch, content):
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a cell ran"))
    path = runner.cell_path(tmp_path, Cell("base"))
    if content is None:
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True)
        path.write_text(content)
    with pytest.raises(FileExistsError, match=r"base.json is no cell record .*it is never overwritten"):
        bench.main(TINY, tmp_path, progress=False)


def test_a_training_reward_without_a_fingerprint_is_warned_about(tmp_path, monkeypatch):
    monkeypatch.setattr(rewards, "_REGISTRY", dict(rewards._REGISTRY))  # the registration stays in this test
    rewards.register("mine", lambda: rewards.FunctionReward(lambda images, prompts: images.mean(axis=(1, 2, 3)) / 255))
    monkeypatch.setattr(runner, "run", lambda *args, **kwargs: {})
    monkeypatch.setattr(bench.report, "write_report", lambda *args: {})
    with pytest.warns(UserWarning, match=r"rewards \['mine'\] have no weights file the cell settings can fingerprint"):
        bench.main(dataclasses.replace(TINY, rewards=("scene+0.1*mine",)), tmp_path, progress=False)


def test_a_bad_value_is_named_before_the_report_in_out_is_judged(grid, tmp_path):
    out, _ = grid  # holds TINY's report: a changed grid would be refused as another grid's
    with pytest.raises(ValueError, match="seeds=0 must be an int >= 1"):
        bench.main(dataclasses.replace(TINY, seeds=0), out, progress=False)


def test_a_plot_the_report_no_longer_draws_is_removed(grid, tmp_path):
    out, _ = grid
    records = runner.load_finished(TINY, TINY.cells(), out)
    bench.report.write_report(TINY, records, tmp_path)
    (tmp_path / bench.report.FINDING2_PLOT).write_bytes(PNG)  # as a finding-2 report left it
    results = bench.report.write_report(TINY, records, tmp_path)
    assert bench.report.plots(results) == list(bench.report.PLOTS)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(bench.report.PLOTS)


def test_cli_refuses_to_replace_a_report_of_another_grid_unless_overwrite(grid, tmp_path, monkeypatch, capsys):
    store, _ = grid
    monkeypatch.setattr(runner, "run_cell", lambda *args: pytest.fail("a cell ran"))
    monkeypatch.setitem(presets.PRESETS, "tiny", TINY)
    options = ["bench", "--preset", "tiny", "--out", str(tmp_path), "--cells", str(store)]
    cli_main(options)
    cli_main(options)  # a rerun of the same grid rewrites its report
    with pytest.raises(SystemExit, match=r"^cotimage bench: .*results.json is the report of another grid .*--overwrite"):
        cli_main([*options, "--agents", "base"])
    capsys.readouterr()
    cli_main([*options, "--agents", "base", "--overwrite"])
    plots = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("plots: "))
    assert plots == "plots: " + ", ".join(str(tmp_path / name) for name in bench.report.PLOTS)
