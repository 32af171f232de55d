"""The benchmark harness: a grid of (agent, reward, seed, variant) cells, resumable, with seed statistics.

>>> from cotimage import bench
>>> results = bench.main(bench.presets.get("quick"), "runs/bench/quick")
>>> print(bench.report.markdown(results))

``cotimage bench --preset quick`` does the same from the command line (see docs/benchmarks.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from cotimage.bench import presets, report
from cotimage.bench.grid import Cell, Preset, Variant
from cotimage.bench.presets import PRESETS
from cotimage.bench.runner import evaluate_cell, run, run_cell
from cotimage.bench.settings import AGENT_SETTINGS
from cotimage.checks import blocking_file, checked_path, require_bool


def main(
    preset: Preset,
    out: str | Path,
    workers: int = 1,
    threads: int = 1,
    progress: bool = True,
    cells: str | Path | None = None,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run a preset's unfinished cells, then aggregate every cell and write the report into ``out``.

    Args:
        preset: The grid (e.g. ``presets.get("quick")``, or your own :class:`Preset`).
        out: Output directory: ``results.{json,csv,md}`` and the plots (and, unless ``cells``
            says otherwise, ``cells/`` and ``tb/``).
        workers: Cells run at once, each in its own process (1: in this process).
        threads: Torch threads per process.
        progress: Show a progress bar over cells.
        cells: Directory that holds the cell records (``cells/``) and their TensorBoard runs
            (``tb/``), default ``out``. Grids that share one reuse each other's finished cells:
            a cell with the same settings runs once (the study's presets share theirs).
        device: Where the generators run (e.g. ``"cuda"``); see :func:`run`.
        overwrite: Replace a report of another grid in ``out`` (a rerun of the same grid always
            rewrites its report); see :func:`report.write_report`.

    Returns:
        The aggregated results (the content of ``results.json``).

    Raises:
        FileExistsError: before any cell runs, if ``out`` holds the report of another grid and
            ``overwrite`` is false, or a saved cell has other settings (see :func:`run`).
    """
    if not isinstance(preset, Preset):
        raise ValueError(f"preset={preset!r} must be a Preset, e.g. presets.get('quick')")
    require_bool("overwrite", overwrite)  # "no" would be true, and replace another grid's report
    preset.validate()  # a bad value is named before anything else is judged
    for name, path in (("out", out), ("cells", cells)):
        if path is not None and blocking_file(checked_path(name, path)):
            raise ValueError(f"{name}={str(path)!r} is or lies under a file; name a directory")
    _warn_unfingerprinted(preset)
    if not overwrite:
        report.check_replaceable(preset, out)  # before the cells run, not after
    records = run(preset, cells or out, workers, threads, progress, device)
    return report.write_report(preset, records, out, overwrite)


def _warn_unfingerprinted(preset: Preset) -> None:
    """Warn about training rewards whose changes a cell's settings cannot see: your own, without weights files."""
    from cotimage import rewards

    terms = {name for spec in preset.rewards for name in rewards.term_names(spec)}
    unseen = sorted(terms - rewards.FINGERPRINTED)
    if unseen and preset.trained_agents:
        warnings.warn(
            f"rewards {unseen} have no weights file the cell settings can fingerprint: finished cells trained on "
            "them are reused even after their code changes; after a change, register it under another name or "
            "use another --cells", UserWarning, stacklevel=3,
        )


__all__ = [
    "AGENT_SETTINGS", "PRESETS", "Cell", "Preset", "Variant", "evaluate_cell", "main", "presets", "report", "run", "run_cell",
]
