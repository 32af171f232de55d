"""Aggregate a grid's cells over seeds and write results.json, results.csv, results.md and the plots.

Scores are the checker's final per-category means of each run: a (runs, tasks) matrix per
group, where a group is ``(agent, reward, variant)`` and the tasks are the suite's categories.
Mean and IQM come with rliable's stratified bootstrap intervals (runs resampled within each
task); the gain of a trained run is its final score minus its own score before training (the
base generator's, since every cell evaluates with the same seed); best-of-N's gain is over the
``base`` cell when the grid has one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from cotimage.bench.grid import BASE, Cell, Preset, best_of, is_baseline
from cotimage.bench.runner import write_atomic
from cotimage.stats import improvement_bootstrap, iqm, mean_score, runs_bootstrap

SIDES = ("in_domain", "out_of_domain")
_TITLES = {"in_domain": "In-domain", "out_of_domain": "Out-of-domain"}
PLOTS = ("curves_in_domain.png", "curves_out_of_domain.png", "categories.png")
#: Drawn besides :data:`PLOTS` when the report has finding 2 and a trained agent (see :func:`plots`).
FINDING2_PLOT = "finding2.png"


def _matrix(points: list[dict], side: str, tasks: list[str]) -> np.ndarray:
    return np.array([[p[side]["categories"][t]["mean"] for t in tasks] for p in points])


def _interval(scores: np.ndarray, statistic) -> dict[str, float]:
    return asdict(runs_bootstrap(scores, statistic, np.random.default_rng(0)))


def aggregate(preset: Preset, records: dict[str, dict]) -> dict[str, Any]:
    """Per group: mean and IQM with intervals, gains, strict accuracy, per-category scores, curves; and P(A > B).

    Args:
        preset: The grid the records belong to.
        records: Cell records by cell id (as :func:`cotimage.bench.run` returns).

    Returns:
        ``{"preset", "groups", "improvement"}`` (JSON-ready); ``improvement`` compares every
        two groups of one reward and variant (baselines join every variant), later in
        ``preset.agents`` order against earlier.
    """
    by_group: dict[tuple[str, str, str], list[tuple[Cell, dict]]] = {}
    for cell in preset.cells():
        by_group.setdefault(cell.group, []).append((cell, records[cell.id]))
    base = records.get(Cell(BASE).id)
    groups, matrices = [], {}
    for key, runs in by_group.items():
        agent = key[0]
        finals = [r["final"] for _, r in runs]
        row: dict[str, Any] = {"agent": agent, "reward": key[1], "variant": key[2], "runs": len(runs),
                               "seeds": [c.seed for c, _ in runs]}
        for side in SIDES:
            tasks = list(finals[0][side]["categories"])
            scores = _matrix(finals, side, tasks)
            matrices[key, side] = scores
            start = None
            if not is_baseline(agent):
                start = _matrix([r["curve"][0] for _, r in runs], side, tasks)
            elif best_of(agent) is not None and base is not None:
                start = _matrix([base["final"]], side, tasks)
            gain = scores - start if start is not None else None
            row[side] = {
                "suite": finals[0][side]["suite"],
                "mean": _interval(scores, mean_score),
                "iqm": _interval(scores, iqm),
                "gain_mean": _interval(gain, mean_score) if gain is not None else None,
                "gain_iqm": _interval(gain, iqm) if gain is not None else None,
                "strict": float(np.mean([f[side]["strict"] for f in finals])),
                "categories": {t: {"mean": float(s.mean()), "min": float(s.min()), "max": float(s.max())} for t, s in zip(tasks, scores.T)},
            }
        length = min(len(r["curve"]) for _, r in runs)
        curves = {side: np.array([[p[side]["overall"]["mean"] for p in r["curve"][:length]] for _, r in runs]) for side in SIDES}
        row["curve"] = {
            "images": [p["images"] for p in runs[0][1]["curve"][:length]],
            **{side: {"mean": c.mean(0).tolist(), "min": c.min(0).tolist(), "max": c.max(0).tolist()} for side, c in curves.items()},
        }
        row["num_images"] = float(np.mean([r["num_images"] for _, r in runs]))
        row["wall_s"] = float(np.mean([r["wall_s"] for _, r in runs]))
        rates = [r["images_per_s"] for _, r in runs if r["images_per_s"]]
        row["images_per_s"] = float(np.mean(rates)) if rates else None
        groups.append(row)
    return {"preset": preset.to_dict(), "groups": groups, "improvement": _improvement(preset, groups, matrices)}


def _improvement(preset: Preset, groups: list[dict], matrices: dict) -> list[dict]:
    order = {a: i for i, a in enumerate(preset.agents)}
    pairs = []
    for reward in preset.rewards:
        for variant in preset.variants or (None,):  # a grid of baselines only has no variant
            name = variant.name if variant is not None else "-"
            rows = [
                g for g in groups
                if (g["agent"] == BASE or g["reward"] == reward) and g["variant"] in ("-", name)
                and (is_baseline(g["agent"]) or variant.applies_to(g["agent"]))
            ]
            rows.sort(key=lambda g: order[g["agent"]])
            for j, a in enumerate(rows):
                for b in rows[:j]:
                    if is_baseline(a["agent"]) and is_baseline(b["agent"]) and variant not in (None, *preset.variants[:1]):
                        continue  # baselines have no variants: compared once
                    key_a, key_b = ((x["agent"], x["reward"], x["variant"]) for x in (a, b))
                    pairs.append({
                        "reward": reward, "variant": name, "a": a["agent"], "b": b["agent"],
                        **{side: asdict(improvement_bootstrap(matrices[key_a, side], matrices[key_b, side], np.random.default_rng(0)))
                           for side in SIDES},
                    })
    return pairs


# -- finding 2 ---------------------------------------------------------------------------------
def generalization(preset: Preset) -> list[dict]:
    """Each reward's ranking accuracy in- and out-of-domain (:func:`cotimage.rewards.generalization`)."""
    from cotimage import rewards

    return [
        rewards.generalization(
            spec, (preset.in_domain, preset.out_of_domain), preset.generalization_prompts, generator=preset.generator
        ).to_dict() | {"spec": spec}
        for spec in preset.rewards
    ]


def _generalization_of(preset: Preset, previous: Path) -> tuple[list[dict], dict]:
    """:func:`generalization` and what it depends on; reused from a previous results.json if that is unchanged.

    It costs about a minute per reward, and a rerun that skips every cell would otherwise pay it again.
    """
    from cotimage import generators, rewards
    from cotimage.shapes import CHECKER_VERSION

    key = {
        "checker": CHECKER_VERSION,  # ranking accuracy is measured against the checker
        "rewards": {spec: rewards.weights_digest(spec) for spec in preset.rewards},
        "prompts": preset.generalization_prompts,
        "suites": [preset.in_domain, preset.out_of_domain],
        "generator": preset.generator,
        "generator_weights": generators.weights_digest(preset.generator),
    }
    saved = json.loads(previous.read_text()) if previous.is_file() else {}
    if saved.get("generalization_key") == key:
        return saved["generalization"], key
    return generalization(preset), key


# -- text outputs ------------------------------------------------------------------------------
def _fmt(value: dict | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    return f"{value['mean']:{sign}.3f} [{value['low']:{sign}.3f}, {value['high']:{sign}.3f}]"


def _label(group: dict, preset: dict[str, Any]) -> str:
    """``agent``, or ``agent [variant]`` when the preset has several variants."""
    variant = f" [{group['variant']}]" if len(preset["variants"]) > 1 and group["variant"] != "-" else ""
    return group["agent"] + variant


def _colors(labels: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    unique = list(dict.fromkeys(labels))
    return {k: f"C{i}" if len(unique) <= 10 else colormaps["tab20"](i % 20) for i, k in enumerate(unique)}


def markdown(results: dict[str, Any]) -> str:
    """results.md: per-side score tables, probability of improvement, cost, and finding 2 when present."""
    preset = results["preset"]
    lines = [
        f"# Benchmark `{preset['name']}`",
        "",
        f"{preset['description']}. Scores are the checker's (`scene`: fraction of criteria met) on "
        f"{preset['eval_prompts']} prompts per category x {preset['eval_images_per_prompt']} images, evaluation seed "
        f"{preset['eval_seed']}; the final score of {preset['seeds']} seed(s) per trained agent. Intervals: 95% "
        "stratified bootstrap over runs (zero width for one run). Gain: over the score before training "
        "(best-of-N: over `base`). Strict: images meeting every criterion (GenEval accuracy).",
    ]
    for side in SIDES:
        suite = results["groups"][0][side]["suite"]
        lines += [
            "", f"## {_TITLES[side]}: `{suite}`", "",
            "| reward | agent | variant | runs | mean [95% CI] | IQM [95% CI] | gain, mean | gain, IQM | strict |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {g['reward']} | {g['agent']} | {g['variant']} | {g['runs']} | {_fmt(g[side]['mean'])} | {_fmt(g[side]['iqm'])} "
            f"| {_fmt(g[side]['gain_mean'], True)} | {_fmt(g[side]['gain_iqm'], True)} | {g[side]['strict']:.3f} |"
            for g in results["groups"]
        ]
    if results["improvement"]:
        lines += [
            "", "## Probability of improvement", "",
            "P(A > B): the probability that a run of A scores higher than a run of B on a category, averaged over categories.", "",
            "| reward | variant | A | B | in-domain P(A > B) | out-of-domain P(A > B) |", "|---|---|---|---|---|---|",
        ]
        lines += [f"| {p['reward']} | {p['variant']} | {p['a']} | {p['b']} | {_fmt(p['in_domain'])} | {_fmt(p['out_of_domain'])} |"
                  for p in results["improvement"]]
    lines += ["", "## Cost", "", "| reward | agent | variant | training images | wall s per run | training images/s |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {g['reward']} | {g['agent']} | {g['variant']} | {g['num_images']:.0f} | {g['wall_s']:.0f} | "
        f"{'—' if g['images_per_s'] is None else format(g['images_per_s'], '.1f')} |"
        for g in results["groups"]
    ]
    if results.get("generalization"):
        lines += ["", "## Finding 2: reward generalization against out-of-domain gain", "", *_finding2_table(results)]
    return "\n".join(lines) + "\n"


def _finding2_table(results: dict[str, Any]) -> list[str]:
    suites = [results["groups"][0][side]["suite"] for side in SIDES]
    accuracy = {g["spec"]: g["accuracy"] for g in results["generalization"]}
    lines = [
        "Ranking accuracy: how often the reward orders two base-generator images of one prompt as the checker does.", "",
        "| reward | ranking acc. in-domain | ranking acc. out-of-domain | agent | variant | gain in-domain | gain out-of-domain |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in results["groups"]:
        if g["reward"] in accuracy and not is_baseline(g["agent"]):
            acc = accuracy[g["reward"]]
            lines.append(
                f"| {g['reward']} | {_fmt(acc[suites[0]])} | {_fmt(acc[suites[1]])} | {g['agent']} | {g['variant']} "
                f"| {_fmt(g['in_domain']['gain_mean'], True)} | {_fmt(g['out_of_domain']['gain_mean'], True)} |"
            )
    return lines


def _csv(results: dict[str, Any]) -> str:
    rows = []
    for g in results["groups"]:
        row = {k: g[k] for k in ("agent", "reward", "variant", "runs", "num_images", "wall_s", "images_per_s")}
        for side in SIDES:
            for stat in ("mean", "iqm", "gain_mean", "gain_iqm"):
                value = g[side][stat] or {"mean": None, "low": None, "high": None}
                row |= {f"{side}_{stat}": value["mean"], f"{side}_{stat}_low": value["low"], f"{side}_{stat}_high": value["high"]}
            row[f"{side}_strict"] = g[side]["strict"]
        rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# -- plots -------------------------------------------------------------------------------------
def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())


def _caption(fig, text: str) -> None:
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=8, wrap=True)


def plot_curves(results: dict[str, Any], side: str, path: Path) -> None:
    """Overall checker score against training images: one panel per reward, one line per agent."""
    from matplotlib.figure import Figure

    preset, groups = results["preset"], results["groups"]
    rewards = preset["rewards"]
    fig = Figure(figsize=(5 * len(rewards), 4.4), layout="constrained")
    axes = fig.subplots(1, len(rewards), sharey=True, squeeze=False)[0]
    colors = _colors([_label(g, preset) for g in groups])
    suite = groups[0][side]["suite"]
    for ax, reward in zip(axes, rewards):
        for g in groups:
            if g["reward"] != reward and g["agent"] != BASE:
                continue
            curve, label = g["curve"], _label(g, preset)
            if is_baseline(g["agent"]):
                ax.axhline(curve[side]["mean"][0], color=colors[label], linestyle="--", linewidth=1, label=label)
                continue
            ax.plot(curve["images"], curve[side]["mean"], marker="o", markersize=3, color=colors[label], label=label)
            ax.fill_between(curve["images"], curve[side]["min"], curve[side]["max"], color=colors[label], alpha=0.15)
        ax.set_title(f"training reward: {reward}")
        ax.set_xlabel("training images")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"checker score on {suite}")
    fig.suptitle(f"{_TITLES[side]} checker score during training (preset {preset['name']})")
    _caption(fig, f"Lines: mean over {preset['seeds']} seed(s); band: min-max over seeds; dashed: baselines (no training).")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    _save(fig, path)


def plot_categories(results: dict[str, Any], path: Path) -> None:
    """Final per-category checker scores, in-domain and out-of-domain, one bar per group."""
    from matplotlib.figure import Figure

    preset, groups = results["preset"], results["groups"]
    fig = Figure(figsize=(max(9, 3 + 1.5 * len(groups)), 7.5), layout="constrained")
    axes = fig.subplots(2, 1)
    width = 0.8 / len(groups)
    colors = _colors([f"{g['reward']} {_label(g, preset)}" for g in groups])
    for ax, side in zip(axes, SIDES):
        tasks = list(groups[0][side]["categories"])
        x = np.arange(len(tasks))
        for i, g in enumerate(groups):
            cats = g[side]["categories"]
            means = np.array([cats[t]["mean"] for t in tasks])
            err = np.array([[means[k] - cats[t]["min"], cats[t]["max"] - means[k]] for k, t in enumerate(tasks)]).T
            label = f"{_label(g, preset)} ({g['reward']})" if g["reward"] != "-" else g["agent"]
            color = colors[f"{g['reward']} {_label(g, preset)}"]
            ax.bar(x + (i - (len(groups) - 1) / 2) * width, means, width, yerr=err, capsize=2, label=label, color=color)
        ax.set_xticks(x, tasks)
        ax.set_ylim(0, 1)
        ax.set_ylabel("checker score")
        ax.set_title(f"{_TITLES[side]}: {groups[0][side]['suite']}")
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    fig.suptitle(f"Final checker score per category (preset {preset['name']})")
    _caption(fig, "Bars: mean over seeds of the final score; whiskers: min-max over seeds; labels: agent (training reward).")
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    _save(fig, path)


def plot_finding2(results: dict[str, Any], path: Path) -> None:
    """Finding 2: each reward's ranking accuracy against the gain of agents trained on it."""
    from matplotlib.figure import Figure

    groups = [g for g in results["groups"] if not is_baseline(g["agent"])]
    accuracy = {g["spec"]: g["accuracy"] for g in results["generalization"]}
    agents = list(dict.fromkeys(g["agent"] for g in groups))
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    for ax, side in zip(fig.subplots(1, 2, sharey=True), SIDES):
        suite = results["groups"][0][side]["suite"]
        for g in groups:
            x, y = accuracy[g["reward"]][suite]["mean"], g[side]["gain_mean"]
            ax.errorbar(x, y["mean"], yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]], fmt="o", capsize=3,
                        color=f"C{agents.index(g['agent'])}", label=g["agent"])
            ax.annotate(g["reward"], (x, y["mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"reward's ranking accuracy on {suite}")
        ax.set_title(_TITLES[side])
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("gain in checker score (mean over seeds)")
    fig.suptitle("Finding 2: does a reward that ranks better out of domain buy more out-of-domain gain?")
    _caption(fig, "One point per (agent, training reward); whiskers: 95% bootstrap interval over seeds.")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    _save(fig, path)


def plots(results: dict[str, Any]) -> list[str]:
    """The plot files of a report: :data:`PLOTS`, and :data:`FINDING2_PLOT` with finding 2 and a trained agent."""
    finding2 = results.get("generalization") and any(not is_baseline(g["agent"]) for g in results["groups"])
    return [*PLOTS, *([FINDING2_PLOT] if finding2 else [])]


def check_replaceable(preset: Preset, out: str | Path) -> None:
    """Check that ``out`` holds no report, or the report of the same grid, which a rerun may rewrite.

    The grid is the preset saved in results.json, all but its ``description`` (prose, which may
    be reworded between runs of one grid).

    Raises:
        FileExistsError: if ``out/results.json`` was made from another grid (the message names
            the preset fields that differ) or is no report, or ``out`` holds report files
            (results.csv, results.md, the plots) without a results.json.
    """
    path = Path(out) / "results.json"
    if not path.is_file():
        strays = [name for name in ("results.csv", "results.md", *PLOTS, FINDING2_PLOT) if (Path(out) / name).exists()]
        if strays:
            raise FileExistsError(
                f"{out} holds {strays} without the results.json of a report; they are never replaced silently: "
                "use another --out, or pass --overwrite (overwrite=True) to replace them"
            )
        return
    try:
        saved = json.loads(path.read_text())["preset"]
    except (ValueError, KeyError, TypeError):
        saved = None
    expected = json.loads(json.dumps(preset.to_dict()))
    if isinstance(saved, dict):
        differ = sorted(k for k in {*saved, *expected} - {"description"} if saved.get(k) != expected.get(k))
        if not differ:
            return
        reason = f"differing: {differ}"
    else:
        reason = "it holds no preset"
    raise FileExistsError(
        f"{path} is the report of another grid ({reason}); it is never replaced silently: "
        "use another --out, or pass --overwrite (overwrite=True) to replace the report"
    )


def write_report(preset: Preset, records: dict[str, dict], out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Aggregate ``records`` and write results.json, results.csv, results.md and the PNG plots in ``out``.

    These files are derived from the cell files: a rerun of the same grid rewrites them, and a
    report of another grid is replaced only with ``overwrite``. A plot of the replaced report
    that this one does not draw (:func:`plots`) is removed, so every plot in ``out`` is current.

    Args:
        preset: The grid the records belong to.
        records: Cell records by cell id (as :func:`cotimage.bench.run` returns).
        out: Output directory.
        overwrite: Replace a report of another grid (see :func:`check_replaceable`).

    Returns:
        The aggregated results (the content of results.json).

    Raises:
        FileExistsError: if ``out`` holds the report of another grid and ``overwrite`` is false.
    """
    out = Path(out)
    if not overwrite:
        check_replaceable(preset, out)
    results = aggregate(preset, records)
    if preset.generalization_prompts:
        results["generalization"], results["generalization_key"] = _generalization_of(preset, out / "results.json")
    text = json.dumps(results, indent=1)
    results = json.loads(text)  # as a reader of the file sees it (lists, not tuples)
    write_atomic(out / "results.json", text)
    write_atomic(out / "results.csv", _csv(results))
    write_atomic(out / "results.md", markdown(results))
    plot_curves(results, "in_domain", out / "curves_in_domain.png")
    plot_curves(results, "out_of_domain", out / "curves_out_of_domain.png")
    plot_categories(results, out / "categories.png")
    if FINDING2_PLOT in plots(results):
        plot_finding2(results, out / FINDING2_PLOT)
    else:
        (out / FINDING2_PLOT).unlink(missing_ok=True)  # the replaced report's, no longer current
    return results
