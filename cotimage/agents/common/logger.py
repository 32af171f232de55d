"""Where TensorBoard runs go: ``<directory>/<name>_<k>``, as stable-baselines3 numbers them."""

from __future__ import annotations

import re
from pathlib import Path

from cotimage.checks import blocking_file, checked_path


def tensorboard_dir(value: str | Path | None) -> Path | None:
    """An agent's ``tensorboard_log`` as a Path (``None``: no logging), checked before any training.

    Raises:
        ValueError: if it, or a directory above it, is a file (naming that file).
    """
    if value is None:
        return None
    value = checked_path("tensorboard_log", value)
    blocker = blocking_file(value)
    if blocker is not None:
        raise ValueError(f"tensorboard_log={str(value)!r} cannot be a directory: {blocker} is a file; name a directory")
    return value


def next_run_dir(directory: Path, name: str) -> Path:
    """``directory/name_k`` with ``k`` one past the highest existing run of that name (1 if none).

    One past the highest, not the count: after a run is deleted, counting would reuse the
    number of a run that still exists and write into it.
    """
    pattern = re.compile(rf"{re.escape(name)}_(\d+)")
    taken = [int(m.group(1)) for p in directory.glob(f"{name}_*") if p.is_dir() and (m := pattern.fullmatch(p.name))]
    return directory / f"{name}_{max(taken, default=0) + 1}"
