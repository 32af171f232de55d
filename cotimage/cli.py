"""The ``cotimage`` command line.

cotimage eval [--generator shapes] [--suite shapes/geneval] [--images-per-prompt 4] ...
cotimage train AGENT [common options] [--FIELD VALUE ...]   (cotimage train AGENT --help lists both)
cotimage bench [--preset quick] [--out runs/bench/quick] [--workers 2] ...
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

from cotimage import suites
from cotimage.checks import MAX_SEED, blocking_file, writable_file

_DEVICE = re.compile(r"cpu|cuda(?::\d+)?")
#: Generators whose policy loads from a weights file (``cotimage eval --weights``).
_TAKE_WEIGHTS = ("shapes",)


def parse_device(value: str) -> str:
    """``--device``'s type: ``cpu``, ``cuda`` or ``cuda:N``, a CUDA device only if one is present.

    Raises:
        argparse.ArgumentTypeError: for another form, or a CUDA device that is not present.
    """
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is no device; use cpu, cuda or cuda:N")
    if value != "cpu":
        import torch

        count, index = torch.cuda.device_count(), int(value.partition(":")[2] or 0)
        if index >= count:
            present = f"the CUDA devices are cuda:0 to cuda:{count - 1}" if count else "no CUDA device is present"
            raise argparse.ArgumentTypeError(f"{value!r}: {present}; use cpu, cuda or cuda:N")
    return value


def _int_at_least(value: str, least: int) -> int | None:
    """``value`` as an int if it is one >= ``least``, else ``None``."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= least else None


def parse_count(value: str) -> int:
    """argparse type of a count (steps, prompts, repeats, ...): an int >= 1."""
    count = _int_at_least(value, 1)
    if count is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an int >= 1")
    return count


def parse_path(value: str) -> Path:
    """argparse type of a file or directory to write: a non-empty path ('' would be the current directory)."""
    if not value:
        raise argparse.ArgumentTypeError("'' is no path; name a file or directory")
    return Path(value)


def check_output_file(path: Path, force: bool) -> None:
    """Check, before any work, that a script may write the file ``path``.

    Raises:
        ValueError: if ``path`` is a directory, sits under a file, or exists and ``force`` is false.
    """
    writable_file(path, force, hint="--force")


def parse_seed(value: str) -> int:
    """``--seed``'s type: an int in [0, 2**63 - 1] (numpy's seeding refuses negatives, torch's larger ints)."""
    seed = _int_at_least(value, 0)
    if seed is None or seed > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value!r} is no seed; use an int in [0, 2**63 - 1]")
    return seed


def _eval(args: argparse.Namespace) -> None:
    from cotimage import generators
    from cotimage.bench.runner import write_atomic
    from cotimage.evaluation import evaluate

    if args.weights is not None and args.generator not in _TAKE_WEIGHTS:
        from cotimage.generators.janus import PATH_ENV

        raise ValueError(
            f"--weights is for the generators {list(_TAKE_WEIGHTS)} only, not {args.generator!r} "
            f"(janus-pro loads the model directory in ${PATH_ENV})"
        )
    outputs = {suite: _eval_outputs(args.out, suite) for suite in args.suite} if args.out is not None else {}
    taken = [str(path) for paths in outputs.values() for path in paths if path.exists()]
    if taken and not args.overwrite:  # before sampling, not after
        raise FileExistsError(f"{', '.join(taken)} exist already; pass --overwrite to replace them, or another --out")
    if args.out is not None:
        if blocking_file(args.out):
            raise ValueError(f"--out {args.out} is or lies under a file; name a directory")
        args.out.mkdir(parents=True, exist_ok=True)
    try:
        generator = generators.load(args.generator, device=args.device, **({"weights": args.weights} if args.weights else {}))
    except (ValueError, FileNotFoundError) as error:
        if not args.weights:
            raise
        raise type(error)(f"--weights={args.weights}: {error}") from error
    overrides = {"temperature": args.temperature, "top_k": args.top_k, "cfg_weight": args.cfg_weight}
    sampling = generator.default_sampling.replace(**{k: v for k, v in overrides.items() if v is not None})
    for suite in args.suite:
        path, grid = outputs.get(suite, (None, None))
        result = evaluate(generator, suite, args.images_per_prompt, args.seed, args.reward, sampling,
                          max_prompts=args.max_prompts, grid_path=grid, overwrite=args.overwrite)
        print(result.table(), end="\n\n")
        if path is not None:
            run = {"generator": args.generator, "weights": args.weights, "images_per_prompt": args.images_per_prompt,
                   "max_prompts": args.max_prompts, "sampling": asdict(sampling), "seed": args.seed}
            write_atomic(path, json.dumps({**result.to_dict(), **run}, indent=2))
            print(f"wrote {path} and {grid}")


def _eval_outputs(out: Path, suite: str) -> tuple[Path, Path]:
    """The results file and sample grid ``cotimage eval --out`` writes for ``suite``."""
    stem = out / suite.replace("/", "-")
    return stem.with_suffix(".json"), stem.with_suffix(".png")


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> None:
    """Train the agent ``args`` name; ``--help`` prints the common options, then the agent's config fields (tyro's)."""
    import tyro

    from cotimage import generators
    from cotimage.agents import registry
    from cotimage.agents.common.saving import check_save_directory
    from cotimage.bench.grid import images_per_update

    if args.help:
        parser.print_help()
        if args.agent is None:
            parser.exit()
        print()
        rest = ["--help"]  # tyro prints the config's fields and exits
    elif args.agent is None:
        parser.error("the following arguments are required: AGENT")
    cls = registry()[args.agent]
    config = tyro.cli(cls.config_class, args=rest, prog=f"cotimage train {args.agent}")
    if args.save is not None:
        try:  # before training, not after it
            check_save_directory(args.save, overwrite=args.overwrite)
        except FileExistsError as error:
            raise FileExistsError(f"--save: {str(error).replace('overwrite=True', '--overwrite')}") from None
    if args.tensorboard_log is not None and (blocker := blocking_file(args.tensorboard_log)):
        raise ValueError(f"--tensorboard-log {args.tensorboard_log}: {blocker} is a file; name a directory")
    per_update, what = images_per_update(config)
    if args.total_images % per_update:
        print(f"note: trains {-(-args.total_images // per_update) * per_update} images, not {args.total_images}: "
              f"training stops between updates of {what}", file=sys.stderr)
    env_kwargs = {"reward": args.reward, "suite": args.suite}
    generator = generators.load(args.generator, device=args.device)
    agent = cls("CotImage-v0", generator, config, env_kwargs=env_kwargs, tensorboard_log=args.tensorboard_log, seed=args.seed)
    agent.learn(args.total_images, progress_bar=True)
    if args.save is not None:
        print(f"saved to {agent.save(args.save, overwrite=args.overwrite)}")
    if args.tensorboard_log is not None:
        print(f"TensorBoard: tensorboard --logdir {args.tensorboard_log}")


def build_parser() -> argparse.ArgumentParser:
    from cotimage import generators
    from cotimage.agents import registry

    parser = argparse.ArgumentParser(prog="cotimage", description="RL for autoregressive image generation.")
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="score a generator on prompt suites (per category, 95%% CIs)")
    ev.add_argument("--generator", default="shapes", choices=generators.names(), help="generator name (default: shapes)")
    ev.add_argument("--weights", default=None,
                    help=f"policy weights file of {', '.join(_TAKE_WEIGHTS)}, e.g. a saved agent's policy.safetensors "
                         "(default: the shipped ones)")
    ev.add_argument("--device", default="cpu", type=parse_device, help="where the generator runs: cpu, cuda, cuda:N (default cpu)")
    ev.add_argument("--suite", nargs="+", default=["shapes/compbench-val", "shapes/geneval"], choices=suites.NAMES)
    ev.add_argument("--images-per-prompt", type=parse_count, default=4)
    ev.add_argument("--max-prompts", type=parse_count, default=None, help="first N prompts of each category only")
    ev.add_argument("--reward", default="scene", help="reward name (default: scene; scene-strict for GenEval accuracy)")
    ev.add_argument("--temperature", type=float, default=None)
    ev.add_argument("--top-k", type=parse_count, default=None)
    ev.add_argument("--cfg-weight", type=float, default=None)
    ev.add_argument("--seed", type=parse_seed, default=0)
    ev.add_argument("--out", type=parse_path, default=None, help="directory for JSON results and sample grids")
    ev.add_argument("--overwrite", action="store_true", help="replace results an earlier run wrote into --out")
    ev.set_defaults(run=_eval)

    # No argparse -h here: --help must reach _train, which adds the agent's config fields (tyro's) to the common options.
    tr = commands.add_parser(
        "train",
        add_help=False,
        usage="%(prog)s AGENT [common options] [--FIELD VALUE ...]",
        help="train an agent on CotImage-v0 (its config fields follow the common options: cotimage train grpo --help)",
        description="Common options below; the agent's config fields follow as --field value (cotimage train AGENT --help lists them).",
    )
    tr.add_argument("-h", "--help", action="store_true", help="show the common options and, after AGENT, its config fields")
    tr.add_argument("agent", nargs="?", choices=list(registry()), metavar="AGENT", help=f"one of {', '.join(registry())}")
    tr.add_argument("--total-images", type=parse_count, default=4096, help="image budget of the run")
    tr.add_argument("--generator", default="shapes", choices=generators.names())
    tr.add_argument("--device", default="cpu", type=parse_device, help="where the generator runs: cpu, cuda, cuda:N (default cpu)")
    tr.add_argument("--reward", default="scene")
    tr.add_argument("--suite", default="shapes/compbench-train", choices=suites.NAMES)
    tr.add_argument("--seed", type=parse_seed, default=0)
    tr.add_argument("--tensorboard-log", type=parse_path, default=Path("runs/tensorboard"))
    tr.add_argument("--save", type=parse_path, default=None, help="directory to save the trained agent to")
    tr.add_argument("--overwrite", action="store_true", help="replace an agent saved at --save before")
    tr.set_defaults(run=partial(_train, tr))

    from cotimage.agents.dpo import collect as dpo_collect

    cp = commands.add_parser(
        "collect-pairs",
        parents=[dpo_collect.build_parser()],
        add_help=False,
        help="write an offline DPO pair dataset (best vs. worst of K images per prompt, through the env)",
    )
    cp.set_defaults(run=lambda a: sys.exit(dpo_collect.run(a)))

    from cotimage.bench import cli as bench_cli

    bn = commands.add_parser(
        "bench",
        parents=[bench_cli.build_parser(add_help=False)],
        help="run a benchmark grid (agents x rewards x seeds x variants), resumable; tables, plots, TensorBoard",
        description=bench_cli.build_parser().description,
    )
    bn.set_defaults(run=bench_cli.run)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        args.run(args, rest) if args.command == "train" else args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        sys.exit(f"cotimage {args.command}: {error}")


if __name__ == "__main__":
    main()
