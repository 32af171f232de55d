"""Argument checks the package shares, so every module words a bad count the same way."""

from __future__ import annotations

import numbers
from typing import Any


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
