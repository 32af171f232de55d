"""Run a preset's cells (resumable, optionally in parallel processes) and save one JSON file per cell."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from cotimage.agents.common.logger import next_run_dir
from cotimage.bench.grid import Cell, Preset, best_of, is_baseline
from cotimage.checks import require_count
from cotimage.rewards.base import RewardModel

if TYPE_CHECKING:
    from cotimage.generators import Generator

#: Bumped when a cell file's layout changes.
CELL_FORMAT = 1


class CheckerTally(RewardModel):
    """The checker's score (``scene``), keeping each image's strict pass/fail so one sampling gives both.

    With ``select`` it scores best-of-N: images come in runs of ``n`` of one prompt (as
    :func:`cotimage.evaluate` lays out ``n * k`` images per prompt, in batches of a multiple of
    ``n``); each run's image that ``select`` scores highest is checked, and its score stands for
    all ``n``, so the prompt's mean is the mean over its ``k`` best-of-N picks.

    Args:
        select: Reward model that picks the best of each run (``None``: score every image).
        n: Run length (the N of best-of-N).
    """

    name = "scene"
    range = (0.0, 1.0)

    def __init__(self, select: RewardModel | None = None, n: int = 1) -> None:
        self.select, self.n = select, n
        #: Per category, 1.0 / 0.0 for each checked image (strict: every criterion met).
        self.strict: dict[str, list[float]] = {}

    def score(self, images: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
        from cotimage.shapes import as_spec, check

        starts = np.arange(0, len(images), self.n)
        if len(images) % self.n or any(prompts[s + j] is not prompts[s] for s in starts for j in range(self.n)):
            raise ValueError(f"best-of-{self.n} needs runs of {self.n} images of one prompt; evaluate with a batch_size multiple of {self.n}")
        picks = starts if self.select is None else starts + self.select(images, prompts).reshape(-1, self.n).argmax(1)
        verdicts = [check(images[i], as_spec(prompts[i])) for i in picks]
        for i, verdict in zip(picks, verdicts):
            self.strict.setdefault(prompts[i].category, []).append(float(verdict.passed))
        return np.repeat(np.array([v.score for v in verdicts], np.float32), self.n)


def evaluate_cell(generator: Generator, preset: Preset, select: RewardModel | None = None, n: int = 1) -> dict[str, dict]:
    """Checker scores of a generator (or its best-of-``n`` under ``select``) in- and out-of-domain.

    Returns:
        ``{"in_domain": summary, "out_of_domain": summary}``; a summary holds ``suite``,
        ``overall`` and ``categories`` (mean with the evaluation's 95% interval over prompts),
        and ``strict`` / ``strict_categories`` (scene-strict: the fraction of images meeting
        every criterion, from the same images).
    """
    from cotimage.evaluation import evaluate

    out = {}
    for side, suite in (("in_domain", preset.in_domain), ("out_of_domain", preset.out_of_domain)):
        tally = CheckerTally(select, n)
        result = evaluate(
            generator,
            suite,
            images_per_prompt=preset.eval_images_per_prompt * n,
            seed=preset.eval_seed,
            reward=tally,
            max_prompts=preset.eval_prompts,
            batch_size=n * max(1, 256 // n),
            progress=False,
        )
        strict = {c: float(np.mean(v)) for c, v in tally.strict.items()}
        out[side] = {
            "suite": suite,
            "overall": asdict(result.overall),
            "categories": {c: asdict(v) for c, v in result.categories.items()},
            "strict": float(np.mean(list(strict.values()))),
            "strict_categories": strict,
        }
    return out


def _log(writer: Any, point: dict[str, Any]) -> None:
    for side in ("in_domain", "out_of_domain"):
        summary = point[side]
        prefix = f"eval/{summary['suite']}"
        writer.add_scalar(f"{prefix}/overall", summary["overall"]["mean"], point["images"])
        writer.add_scalar(f"eval-strict/{summary['suite']}/overall", summary["strict"], point["images"])
        for category, value in summary["categories"].items():
            writer.add_scalar(f"{prefix}/{category}", value["mean"], point["images"])
    writer.flush()


def run_cell(preset: Preset, cell: Cell, out: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Train (unless a baseline) and evaluate one cell; write ``<out>/cells/<cell.id>.json``.

    The cell file is written once and never replaced: if another grid sharing ``out`` saved
    the cell while this one ran, its record is kept and returned (an error if its settings differ).

    A trained cell is evaluated at each of ``preset.eval_points``; the eval scalars go to the
    TensorBoard run ``<out>/tb/<cell.id>/eval_<k>`` beside the agent's own ``train_<k>``.

    Returns:
        The saved record: ``id``, ``settings``, ``curve`` (one point per evaluation, with its
        ``images``), ``final`` (the last point), ``wall_s``, ``train_wall_s``, ``images_per_s``.
    """
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from cotimage import generators, rewards
    from cotimage.agents import registry

    out = Path(out)
    settings = preset.cell_settings(cell)
    saved = _saved_record(cell_path(out, cell), settings)  # another grid sharing the store may have run it meanwhile
    if saved is not None:
        return saved
    start = time.perf_counter()
    tb = out / "tb" / cell.id
    tb.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(next_run_dir(tb, "eval")))
    curve: list[dict[str, Any]] = []
    train_wall, images = 0.0, 0
    generator = generators.load(preset.generator, device=device)
    if is_baseline(cell.agent):
        n = best_of(cell.agent) or 1
        select = rewards.make(cell.reward) if n > 1 else None
        curve.append({"images": 0, **evaluate_cell(generator, preset, select, n)})
        _log(writer, curve[-1])
    else:
        torch.manual_seed(cell.seed)
        env_kwargs = {"reward": cell.reward, "suite": preset.train_prompts(cell.variant)}
        agent = registry()[cell.agent](
            "CotImage-v0", generator, preset.config(cell), env_kwargs=env_kwargs, tensorboard_log=tb, seed=cell.seed
        )
        for target in preset.eval_points(cell.agent):
            if agent.num_images < target:
                tick = time.perf_counter()
                agent.learn(target - agent.num_images, progress_bar=False, tb_log_name="train")
                train_wall += time.perf_counter() - tick
            if not curve or agent.num_images > curve[-1]["images"]:  # a DPO round may pass several points
                curve.append({"images": agent.num_images, **evaluate_cell(agent.generator, preset)})
                _log(writer, curve[-1])
        images = agent.num_images
    writer.close()
    record = {
        "format": CELL_FORMAT,
        "id": cell.id,
        "settings": settings,
        "curve": curve,
        "final": curve[-1],
        "num_images": images,
        "wall_s": time.perf_counter() - start,
        "train_wall_s": train_wall,
        "images_per_s": images / train_wall if train_wall else None,
    }
    path = cell_path(out, cell)
    if not write_new(path, json.dumps(record, indent=1)):
        # another grid sharing the store saved this cell meanwhile: keep its record (an error if its settings differ)
        return _saved_record(path, settings)
    return record


def cell_path(out: str | Path, cell: Cell) -> Path:
    """Where a cell's record is saved: ``<out>/cells/<cell.id>.json``."""
    return Path(out) / "cells" / f"{cell.id}.json"


def _temporary(path: Path, data: str | bytes) -> Path:
    """``data`` written to a temporary file beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return tmp


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file and a rename, so a file is whole or absent, never half written."""
    os.replace(_temporary(path, data), path)


def write_new(path: Path, data: str | bytes) -> bool:
    """Write ``path`` whole, as :func:`write_atomic` does, unless it exists: a file is never replaced.

    Returns:
        Whether ``path`` was written (``False``: it existed, and is left as it was).
    """
    tmp = _temporary(path, data)
    try:
        os.link(tmp, path)  # atomic, and fails if path exists (os.replace would replace it)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def _normalized(settings: dict[str, Any]) -> Any:
    return json.loads(json.dumps(settings))  # tuples become lists, as in a saved file


def load_finished(preset: Preset, cells: Sequence[Cell], out: str | Path) -> dict[str, dict]:
    """The saved records of ``cells`` under ``out``, by cell id.

    Raises:
        FileExistsError: if a cell file was saved with other settings (the message names them)
            or in another :data:`CELL_FORMAT`: it is never replaced; choose another ``out`` or
            move the file away.
    """
    saved = [cell for cell in cells if cell_path(out, cell).exists()]
    return {cell.id: _saved_record(cell_path(out, cell), preset.cell_settings(cell)) for cell in saved}


def _saved_record(path: Path, settings: dict[str, Any]) -> dict | None:
    """The record at ``path`` if one was saved with ``settings``; ``None`` if there is none.

    Raises:
        FileExistsError: for a record of another :data:`CELL_FORMAT`, or saved with other
            settings (naming the keys that differ), or a path that holds no record (a
            directory, or a file that is not a JSON object).
    """
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text()) if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        raise FileExistsError(f"{path} is no cell record (not a file holding a JSON object); it is never overwritten: "
                              "use another --out, or move it away to run the cell")
    if record.get("format") != CELL_FORMAT:
        raise FileExistsError(
            f"{path} is a cell record of format {record.get('format')!r}, and this version reads format {CELL_FORMAT}; "
            "it is never overwritten: use another --out, or move the file away to rerun the cell"
        )
    expected = _normalized(settings)
    saved = _as_this_version_saves(record.get("settings", {}))
    if saved != expected:
        differ = sorted(k for k in {*saved, *expected} if saved.get(k) != expected.get(k))
        raise FileExistsError(
            f"{path} was run with other settings (differing: {differ}); it is never overwritten: "
            "use another --out, or move the file away to rerun the cell"
        )
    return record


#: The shapes generator weights every cell saved before cells recorded them (shipped unchanged since 3f0c244).
_FIRST_SHAPES_WEIGHTS = {"shapes_generator.safetensors": "e605538435794e29"}


def _as_this_version_saves(saved: dict[str, Any]) -> dict[str, Any]:
    """Saved cell settings in this version's form, so that older records of the same run still match.

    Older records kept the variant's ``agents`` (where else it applies, no part of the result)
    and no ``generator_weights`` (then always the shapes weights shipped first; a Janus cell
    without them matches nothing, and is refused as one of other settings).
    """
    saved = dict(saved)
    if isinstance(saved.get("variant"), dict):
        saved["variant"] = {k: v for k, v in saved["variant"].items() if k != "agents"}
    if "generator_weights" not in saved and saved.get("generator") == "shapes":
        saved["generator_weights"] = _FIRST_SHAPES_WEIGHTS
    return saved


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run(
    preset: Preset, out: str | Path, workers: int = 1, threads: int = 1, progress: bool = True, device: str = "cpu"
) -> dict[str, dict]:
    """Run every unfinished cell of ``preset`` and return all its records by cell id.

    Finished cells (``<out>/cells/<id>.json`` with the same settings) are skipped, so a rerun
    resumes an interrupted grid.

    Args:
        preset: The grid.
        out: Output directory.
        workers: Run cells in this many processes at once (each with ``threads`` torch threads);
            1 runs them in this process.
        threads: Torch threads per process.
        progress: Show a progress bar over cells.
        device: Where every cell's generator runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``); workers share it.
            Not a cell setting: a cell's results do not depend on it beyond floating-point rounding.

    Raises:
        ValueError: for an invalid preset, or ``workers`` / ``threads`` < 1.
        FileExistsError: for a saved cell with other settings or format (see :func:`load_finished`).
    """
    require_count("workers", workers)
    require_count("threads", threads)
    preset.validate()
    cells = preset.cells()
    records = load_finished(preset, cells, out)
    todo = [c for c in cells if c.id not in records]
    bar = tqdm(total=len(cells), initial=len(records), unit="cell", desc=f"bench {preset.name}", disable=not progress)
    if workers == 1:
        import torch

        torch.set_num_threads(threads)
        for cell in todo:
            bar.set_postfix_str(cell.id)
            records[cell.id] = run_cell(preset, cell, out, device)
            bar.update()
    else:
        # spawn: a forked child would inherit torch's thread pools in an undefined state.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(run_cell, preset, cell, out, device): cell for cell in todo}
            try:
                for future in as_completed(futures):
                    records[futures[future].id] = future.result()
                    bar.set_postfix_str(futures[future].id)
                    bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # finished cells are saved; a rerun resumes
                raise
    bar.close()
    return {c.id: records[c.id] for c in cells}
