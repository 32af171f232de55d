"""Argument checks the package shares, so every module words a bad count the same way."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """Whether ``value`` is a finite real number (an int or a float, Python's or NumPy's), not a bool."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a float's range
        return False


def require_bool(name: str, value: Any) -> bool:
    """``value``; ``ValueError`` naming ``name`` unless it is True or False (a truthy "no" would switch it on)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


def checked_path(name: str, value: Any) -> Path:
    """``value`` as a Path; ``ValueError`` naming ``name`` unless it is a non-empty str or path.

    An empty string would be the current directory, where nobody means to write a save.
    """
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise ValueError(f"{name}={value!r} must be a non-empty path (a str or pathlib.Path)")
    return Path(value)


def blocking_file(path: str | Path) -> Path | None:
    """The file at ``path`` or above it that keeps ``path`` from being (or holding) a directory, if any."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


#: The largest seed every seeded library here takes (torch's manual_seed reads a signed 64-bit int).
MAX_SEED = 2**63 - 1


def writable_file(path: Any, overwrite: Any, hint: str = "overwrite=True") -> Path:
    """``path`` as a Path, once checked that a file may be written there without replacing one unasked.

    Raises:
        ValueError: if ``overwrite`` is not a bool, ``path`` is no path or a directory, or a
            directory above it is a file; or if a file is there and ``overwrite`` is false
            (``hint`` says how to allow it).
    """
    require_bool("overwrite", overwrite)
    path = checked_path("path", path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; name the file to write")
    if blocking_file(path.parent):
        raise ValueError(f"{path} cannot be written: a parent of it is a file")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass {hint} to overwrite it")
    return path


def save_directory(path: Any, overwrite: Any, what: str) -> Path:
    """``path`` as a Path, once checked that ``what`` (e.g. "a saved agent") may be saved there.

    Raises:
        ValueError: if ``overwrite`` is not a bool ("no" would be true) or ``path`` no path.
        FileExistsError: if ``path``, or a directory above it, is a file.
    """
    require_bool("overwrite", overwrite)
    path = checked_path("path", path)
    blocker = blocking_file(path)
    if blocker is not None:
        raise FileExistsError(f"{path} cannot hold {what}: {blocker} is a file; name a new or empty directory")
    return path


def require_seed(name: str, value: Any) -> int:
    """``value`` as a Python int; ``ValueError`` naming ``name`` unless it is an int in [0, :data:`MAX_SEED`]."""
    if not is_int(value) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name}={value!r} must be an int in [0, 2**63 - 1]")
    return int(value)


def require_count(name: str, value: Any, least: int = 1, none_means: str | None = None) -> int | None:
    """``value`` as a Python int (so it can be saved as JSON); ``ValueError`` naming ``name`` unless it is an int >= ``least``.

    With ``none_means``, ``None`` is allowed too (and returned), and the message says what it means.
    """
    if value is None and none_means is not None:
        return None
    if not is_int(value) or value < least:
        allowed = f"None ({none_means}) or an int >= {least}" if none_means else f"an int >= {least}"
        raise ValueError(f"{name}={value!r} must be {allowed}")
    return int(value)
