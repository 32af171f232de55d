"""Shared helpers of the benchmark scripts: prompts, timing and the results file."""

from __future__ import annotations

import itertools
import json
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cotimage import suites
from cotimage.shapes import CHECKER_VERSION
from cotimage.suites import PromptRecord

RESULTS = Path(__file__).parent / "results"


def mixed_prompts(suite: str, batch: int) -> list[PromptRecord]:
    """``batch`` prompts of ``suite`` taken in turn from each of its categories, cycling if the suite is smaller.

    A suite file lists its categories one after another, so its first ``batch`` prompts would
    time one category only (and a batch larger than the suite would be cut short).

    Raises:
        ValueError: if ``batch`` is not an int >= 1.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r} must be an int >= 1")
    records = suites.load(suite)
    by_category = [[r for r in records if r.category == c] for c in suites.categories(suite)]
    in_turn = [r for row in itertools.zip_longest(*by_category) for r in row if r is not None]
    return [in_turn[i % len(in_turn)] for i in range(batch)]


def best_time(fn: Callable[[], object], repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """Fastest wall time of ``repeats`` calls (after one warm-up), in seconds.

    On a CUDA ``device`` each call is timed between synchronisations, so queued kernels count.
    """
    device = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def saved_activation_bytes(module: torch.nn.Module, run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """``run()`` and the bytes autograd keeps from it for the backward pass, ``module``'s weights left out.

    Each storage counts once (views and tensors saved twice share one), so this is the activation memory
    that gradient checkpointing trades for recomputation.
    """
    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = run()
    return out, sum(kept.values())


def append_result(name: str, figures: dict) -> Path:
    """Append one JSON line (timestamp, commit, machine, checker version, figures) to ``results/<name>.jsonl``."""
    RESULTS.mkdir(exist_ok=True)
    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": commit_id(),
        "machine": f"{platform.machine()}, {cpu_model()}, {torch.get_num_threads()} torch threads",
        "checker": CHECKER_VERSION,  # scores and rankings against the checker change with it
        **figures,
    }
    path = RESULTS / f"{name}.jsonl"
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return path


def commit_id() -> str:
    """The checkout's short commit, ``-dirty`` if a file outside ``benchmarks/results`` has changed.

    Git runs in the repository, wherever the script is started from; the results files are left
    out of the check, since each benchmark's own line changes them.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS.parent.parent)
        except OSError:  # no git
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit is None:  # an exported tree: the figures are still worth keeping
        return "unknown (no git checkout)"
    dirty = git("status", "--porcelain", "--", ".", f":(exclude){RESULTS.relative_to(RESULTS.parent.parent)}")
    return commit + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (Linux), so results of two machines are told apart; else the processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

