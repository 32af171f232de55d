"""The ``cotimage`` command line.

cotimage eval [--generator shapes] [--suite shapes/geneval] [--images-per-prompt 4] ...
cotimage bench [--preset quick] [--out runs/bench/quick] [--workers 2] ...
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from cotimage import suites


def _eval(args: argparse.Namespace) -> None:
    from cotimage import generators
    from cotimage.evaluation import evaluate

    generator = generators.load(args.generator, device=args.device, **({"weights": args.weights} if args.weights else {}))
    overrides = {"temperature": args.temperature, "top_k": args.top_k, "cfg_weight": args.cfg_weight}
    sampling = generator.default_sampling.replace(**{k: v for k, v in overrides.items() if v is not None})
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    for suite in args.suite:
        grid = args.out / f"{suite.replace('/', '-')}.png" if args.out else None
        result = evaluate(
            generator,
            suite,
            args.images_per_prompt,
            args.seed,
            args.reward,
            sampling,
            max_prompts=args.max_prompts,
            grid_path=grid,
        )
        print(result.table(), end="\n\n")
        if args.out is not None:
            path = args.out / f"{suite.replace('/', '-')}.json"
            path.write_text(json.dumps({**result.to_dict(), "sampling": asdict(sampling), "seed": args.seed}, indent=2))
            print(f"wrote {path} and {grid}")


def _train(args: argparse.Namespace, rest: list[str]) -> None:
    import tyro

    from cotimage import generators
    from cotimage.agents import registry

    cls = registry()[args.agent]
    config = tyro.cli(cls.config_class, args=rest, prog=f"cotimage train {args.agent} [common options]")
    if args.save is not None and (args.save / "agent.json").exists():
        raise ValueError(f"--save {args.save} already holds a saved agent; choose another directory")
    env_kwargs = {"reward": args.reward, "suite": args.suite}
    generator = generators.load(args.generator, device=args.device)
    agent = cls("CotImage-v0", generator, config, env_kwargs=env_kwargs, tensorboard_log=args.tensorboard_log, seed=args.seed)
    agent.learn(args.total_images, progress_bar=True)
    if args.save is not None:
        print(f"saved to {agent.save(args.save)}")
    if args.tensorboard_log is not None:
        print(f"TensorBoard: tensorboard --logdir {args.tensorboard_log}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cotimage", description="RL for autoregressive image generation.")
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("eval", help="score a generator on prompt suites (per category, 95%% CIs)")
    ev.add_argument("--generator", default="shapes", help="generator name (default: shapes)")
    ev.add_argument("--weights", default=None, help="policy weights file (default: the shipped ones)")
    ev.add_argument("--device", default="cpu", help="where the generator runs: cpu, cuda, cuda:N (default cpu)")
    ev.add_argument("--suite", nargs="+", default=["shapes/compbench-val", "shapes/geneval"], choices=suites.NAMES)
    ev.add_argument("--images-per-prompt", type=int, default=4)
    ev.add_argument("--max-prompts", type=int, default=None, help="first N prompts of each category only")
    ev.add_argument("--reward", default="scene", help="reward name (default: scene; scene-strict for GenEval accuracy)")
    ev.add_argument("--temperature", type=float, default=None)
    ev.add_argument("--top-k", type=int, default=None)
    ev.add_argument("--cfg-weight", type=float, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", type=Path, default=None, help="directory for JSON results and sample grids")
    ev.set_defaults(run=_eval)

    tr = commands.add_parser(
        "train",
        help="train an agent on CotImage-v0 (algorithm options after the common ones: cotimage train grpo --help)",
        description="Common options here; the agent's config fields follow as --field value (see 'cotimage train AGENT --help').",
    )
    tr.add_argument("agent", choices=["grpo", "dpo", "ppo", "sb3ppo", "reinforce"])
    tr.add_argument("--total-images", type=int, default=4096, help="image budget of the run")
    tr.add_argument("--generator", default="shapes")
    tr.add_argument("--device", default="cpu", help="where the generator runs: cpu, cuda, cuda:N (default cpu)")
    tr.add_argument("--reward", default="scene")
    tr.add_argument("--suite", default="shapes/compbench-train", choices=suites.NAMES)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--tensorboard-log", type=Path, default=Path("runs/tensorboard"))
    tr.add_argument("--save", type=Path, default=None, help="directory to save the trained agent to")
    tr.set_defaults(run=_train)

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
