"""Where TensorBoard runs go: ``<directory>/<name>_<k>``, as stable-baselines3 numbers them."""

from __future__ import annotations

import re
from pathlib import Path


def next_run_dir(directory: Path, name: str) -> Path:
    """``directory/name_k`` with ``k`` one past the highest existing run of that name (1 if none).

    One past the highest, not the count: after a run is deleted, counting would reuse the
    number of a run that still exists and write into it.
    """
    pattern = re.compile(rf"{re.escape(name)}_(\d+)")
    taken = [int(m.group(1)) for p in directory.glob(f"{name}_*") if p.is_dir() and (m := pattern.fullmatch(p.name))]
    return directory / f"{name}_{max(taken, default=0) + 1}"
