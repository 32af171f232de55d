"""File fingerprints: what makes a saved result tied to the weights it was computed with."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of a file's bytes (cached until the file is rewritten)."""
    path = Path(path)
    return _digest(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: Path, mtime_ns: int) -> str:  # mtime in the key: a rewritten file is hashed again
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
