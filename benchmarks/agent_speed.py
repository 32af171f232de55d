"""Training speed and peak memory of every agent, measured in one run of this script.

    python -m benchmarks.agent_speed [--agents grpo dpo ppo reinforce sb3ppo ppo:n_epochs=1] [--updates 2]

Each agent trains in its own subprocess (so its peak RSS is its own), one after another on the
same machine: a warm-up update, then ``--updates`` timed updates. Prints env steps/s, images/s,
peak RSS, the share of a native agent's time spent generating through the env
(``time/rollout_fraction``; the rest is losses and gradient steps), the arithmetic of one
more (untimed) update per image as torch's ``FlopCounterMode`` counts it (matmuls and
attention) and the rate that makes, and each native agent's speed as a multiple of SB3PPO's;
appends a line to benchmarks/results/agent_speed.jsonl.

Speed ratios follow the arithmetic: every agent runs the same transformer at a similar
GFLOP/s, so a native agent is N times faster than SB3PPO about when it needs N times fewer
GFLOP per image (the KV cache saves SB3PPO's recomputation of every prefix; a PPO epoch
costs a full teacher-forced pass over the batch).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
import time

from benchmarks.common import append_result, peak_rss_mib
from cotimage.cli import parse_count

BATCH = {"sb3ppo": 16}  # SB3PPO: 16 envs x n_steps 64 tokens = one image per env per update


def parse_entry(entry: str) -> tuple[str, dict]:
    """``"ppo:n_epochs=1,minibatch_size=64"`` -> ``("ppo", {"n_epochs": 1, "minibatch_size": 64})``."""
    name, _, settings = entry.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--agents entry {entry!r}: {item!r} is not FIELD=VALUE")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a bare string, e.g. loss_type=ipo
    return name, overrides


def measure(entry: str, updates: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from cotimage.agents import registry

    name, overrides = parse_entry(entry)
    cls = registry()[name]
    agent = cls(config=cls.config_class(**{"batch_size": BATCH.get(name, 64), **overrides}), seed=0)
    per_update = agent.config.batch_size
    agent.learn(per_update, progress_bar=False)  # warm-up
    fractions: list[float] = []
    start, images = time.perf_counter(), agent.num_images
    agent.learn(per_update * updates, progress_bar=False,
                callback=lambda _, metrics: fractions.append(metrics.get("time/rollout_fraction", float("nan"))))
    wall = time.perf_counter() - start
    done = agent.num_images - images
    tokens = agent.generator.num_image_tokens
    with FlopCounterMode(display=False) as flops:  # one more update, untimed: the counter slows every op
        agent.learn(per_update, progress_bar=False)
    return {"images_per_s": done / wall, "env_steps_per_s": done * tokens / wall, "peak_rss_mib": peak_rss_mib(),
            "rollout_fraction": sum(fractions) / len(fractions) if fractions else float("nan"),
            "gflop_per_image": flops.get_total_flops() / per_update / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["grpo", "dpo", "ppo", "reinforce", "sb3ppo"],
                        help="registered agents, each optionally with config fields: ppo:n_epochs=1,minibatch_size=64")
    parser.add_argument("--updates", type=parse_count, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one agent, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.updates)))
        return
    results, failed = {}, {}
    for name in args.agents:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.agent_speed", "--one", name, "--updates", str(args.updates)],
            capture_output=True, text=True,
        )
        if out.returncode:  # say why, and keep the agents measured so far
            failed[name] = (out.stderr.strip().splitlines() or ["no error output"])[-1]
            print(f"{name} failed: {out.stderr.strip()}", file=sys.stderr, flush=True)
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    base = results.get("sb3ppo", {}).get("env_steps_per_s")
    print("| agent | env steps/s | images/s | x SB3PPO | rollout share | GFLOP per image | GFLOP/s | peak RSS MiB |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{r['env_steps_per_s'] / base:.1f}" if base else "-"
        share = "-" if math.isnan(r["rollout_fraction"]) else f"{r['rollout_fraction']:.0%}"  # SB3PPO logs none
        print(f"| {name} | {r['env_steps_per_s']:.0f} | {r['images_per_s']:.2f} | {ratio} | {share} "
              f"| {r['gflop_per_image']:.2f} | {r['gflop_per_image'] * r['images_per_s']:.0f} | {r['peak_rss_mib']:.0f} |")
    figures = {"updates": args.updates, "agents": results, **({"failed": failed} if failed else {}), "driver_rss_mib": peak_rss_mib()}
    print(f"appended to {append_result('agent_speed', figures)}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
