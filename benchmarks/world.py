"""Measure the shapes world against the issue's bars and append the figures to a JSONL log.

    python -m benchmarks.world [--n 1000] [--seed 3000]

Figures (each over ``--n`` fresh renders, from seeds the suite builder and
scripts/train_vq.py do not use):

- ``pass_rate[suite]``: the checker passes renders of the suite's specs (bar: >= 99.5%);
- ``rejection_rate``: the checker rejects renders of a spec judged against a minimally
  altered spec (:func:`cotimage.shapes.spec.alter`), overall and per kind (bar: >= 99%);
- ``vq_pass_rate``: the checker passes VQ encode -> decode reconstructions (bar: >= 98%);
- ``check_images_per_s``: checker throughput on one core-bound process.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from benchmarks.common import append_result
from cotimage import suites
from cotimage.cli import parse_count
from cotimage.shapes import PatchVQ, check, render
from cotimage.shapes.spec import alter

BARS = {"pass_rate": 0.995, "rejection_rate": 0.99, "vq_pass_rate": 0.98}


def fresh_renders(records, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """``n`` records drawn at random, each rendered afresh: (images (n, 32, 32, 3), specs)."""
    specs = [records[i].spec for i in rng.integers(len(records), size=n)]
    return np.stack([render(spec, rng) for spec in specs]), specs


def pass_rate(images, specs) -> float:
    return float(np.mean([check(image, spec).passed for image, spec in zip(images, specs, strict=True)]))


def rejection(records, n: int, rng: np.random.Generator) -> tuple[float, dict[str, float], dict[str, int]]:
    """Render ``n`` specs, judge each against an alteration of it: (rate, rate per kind, cases per kind)."""
    cases, rejected = Counter(), Counter()
    for i in rng.integers(len(records), size=n):
        original = records[i].spec
        alteration = alter(original, rng)
        cases[alteration.kind] += 1
        rejected[alteration.kind] += not check(render(original, rng), alteration.spec).passed
    per_kind = {kind: rejected[kind] / cases[kind] for kind in cases}
    return sum(rejected.values()) / n, per_kind, dict(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=parse_count, default=1000, help="cases per figure")
    parser.add_argument("--seed", type=int, default=3000, help="base seed of the fresh renders")
    args = parser.parse_args()
    pooled = [r for name in suites.NAMES for r in suites.load(name)]

    pass_rates, seconds, checked = {}, 0.0, 0
    for k, name in enumerate(suites.NAMES):
        images, specs = fresh_renders(suites.load(name), args.n, np.random.default_rng([args.seed, k]))
        start = time.perf_counter()
        pass_rates[name] = pass_rate(images, specs)
        seconds += time.perf_counter() - start
        checked += len(images)
    rejection_rate, rejection_by_kind, cases_by_kind = rejection(pooled, args.n, np.random.default_rng([args.seed, 10]))
    vq = PatchVQ.load()
    images, specs = fresh_renders(pooled, args.n, np.random.default_rng([args.seed, 20]))
    vq_pass_rate = pass_rate(vq.decode(vq.encode(images)), specs)

    result = {
        "n": args.n,
        "seed": args.seed,
        "pass_rate": pass_rates,
        "rejection_rate": rejection_rate,
        "rejection_rate_by_kind": rejection_by_kind,
        "rejection_cases_by_kind": cases_by_kind,
        "vq_pass_rate": vq_pass_rate,
        "check_images_per_s": checked / seconds,
    }

    rows = [
        (f"checker pass rate, fresh renders of {name}", rate, BARS["pass_rate"])
        for name, rate in pass_rates.items()
    ]
    rows.append(("checker rejection rate, minimally altered specs", rejection_rate, BARS["rejection_rate"]))
    rows += [(f"  {kind}: {n} cases", rejection_by_kind[kind], None) for kind, n in sorted(cases_by_kind.items())]
    rows.append(("checker pass rate, VQ reconstructions", vq_pass_rate, BARS["vq_pass_rate"]))
    width = max(len(label) for label, *_ in rows)
    for label, value, bar in rows:
        judged = "" if bar is None else f"  (bar >= {bar:.1%}: {'ok' if value >= bar else 'BELOW BAR'})"
        print(f"{label:{width}s} {value:8.2%}{judged}")
    print(f"{'checker speed, images/s':{width}s} {result['check_images_per_s']:8.0f}")
    print(f"appended to {append_result('world', result)}")


if __name__ == "__main__":
    main()
