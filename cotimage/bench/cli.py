"""``cotimage bench``: run a benchmark preset, resumably, and write its tables and plots.

cotimage bench --preset quick [--out runs/bench/quick] [--cells DIR] [--agents grpo dpo] [--rewards scene pref]
               [--seeds 3] [--budget 4096] [--workers 2] [--threads 1] [--overwrite]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from cotimage.bench.presets import PRESETS, get
from cotimage.cli import parse_device, parse_path


def build_parser(prog: str | None = None, add_help: bool = True) -> argparse.ArgumentParser:
    """The options of ``cotimage bench`` (also ``python -m benchmarks.compare``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        add_help=add_help,
        description="Train and evaluate a grid of agents x rewards x seeds x variants; finished cells are reused.",
    )
    parser.add_argument("--preset", default="quick", choices=list(PRESETS), help="grid to run (default: quick; --list describes them)")
    parser.add_argument("--out", type=parse_path, default=None, help="output directory (default: runs/bench/<preset>)")
    parser.add_argument(
        "--cells", type=parse_path, default=None,
        help="directory of the cell records and TensorBoard runs (default: --out); grids sharing one reuse finished cells",
    )
    parser.add_argument("--agents", nargs="+", default=None, help="override the agents: registered agents, base, best-of-N")
    parser.add_argument("--rewards", nargs="+", default=None, help="override the training rewards (reward specs)")
    parser.add_argument("--seeds", type=int, default=None, help="override the number of seeds (runs seeds 0..N-1)")
    parser.add_argument("--budget", type=int, default=None, help="override the training images per cell (a multiple of each agent's batch)")
    parser.add_argument("--eval-every", type=int, default=None, help="override the training images between evaluations")
    parser.add_argument("--eval-prompts", type=int, default=None, help="override the evaluation prompts per category")
    parser.add_argument("--workers", type=int, default=1, help="cells run at once, one process each (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--device", default="cpu", type=parse_device, help="where the generators run: cpu, cuda, cuda:N (default cpu)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace a report of another grid in --out (a rerun of the same grid always rewrites its report)",
    )
    parser.add_argument("--list", action="store_true", help="describe the presets and exit")
    return parser


def run(args: argparse.Namespace) -> None:
    """Run the preset the parsed ``args`` describe; print the markdown tables and where the outputs are."""
    if args.list:
        for name, preset in PRESETS.items():
            print(f"{name:10s} {preset.description}")
        return
    from cotimage import bench

    preset = get(args.preset)
    if args.agents:
        preset = preset.with_agents(args.agents)
    overrides = {
        "rewards": tuple(args.rewards) if args.rewards else None,
        "seeds": args.seeds,
        "budget": args.budget,
        "eval_every": args.eval_every,
        "eval_prompts": args.eval_prompts,
    }
    preset = dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    out = args.out or Path("runs/bench") / preset.name
    store = args.cells or out
    results = bench.main(
        preset, out, workers=args.workers, threads=args.threads, cells=store, device=args.device,
        overwrite=args.overwrite,
    )
    print(bench.report.markdown(results))
    print(f"results: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.csv'}; cells: {store / 'cells'}")
    print(f"plots: {', '.join(str(out / p) for p in bench.report.plots(results))}")
    print(f"TensorBoard: tensorboard --logdir {store / 'tb'}")


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    """Parse ``argv`` and run; a bad input exits with its message."""
    args = build_parser(prog).parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        sys.exit(f"{prog or 'cotimage bench'}: {error}")


if __name__ == "__main__":
    main()
