"""Named benchmark grids: a CI smoke test, a one-hour comparison, and the study's three findings.

Budgets and evaluation sizes are starting points, to tune; ``cotimage bench`` overrides the
budget, seeds, agents and rewards from the command line.
"""

from __future__ import annotations

from cotimage.bench.grid import Preset, Variant

_GROUP = ("group_size", "samples_per_prompt")  # GRPO's (and REINFORCE's) group and DPO's K, scaled together


def _k(k: int) -> dict[str, int]:
    return dict.fromkeys(_GROUP, k)


#: What the study's presets (its three findings and ``ties``) share, so that with one cell
#: store (``--cells``) a cell with the same settings (e.g. GRPO on the checker, seed 0) runs
#: once for all. Ten seeds: with three, the bootstrap intervals were too narrow (a 3-seed
#: interval excluded the 10-seed mean). The four presets (190 trained cells) take about 70
#: minutes on 2 cores with 2 workers.
_STUDY: dict = {"seeds": 10, "budget": 2048, "eval_every": 1024, "eval_prompts": 50}


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quick",
            ("base", "best-of-4", "grpo", "dpo"),
            "smoke test (CI): two agents and both baselines, 1 seed, 512 images, a small evaluation",
            seeds=1,
            budget=512,
            batch_size=32,
            eval_every=128,
            eval_prompts=4,
        ),
        Preset(
            "default",
            ("base", "best-of-4", "grpo", "dpo", "ppo", "reinforce", "sb3ppo"),
            "every agent and both baselines on the checker and the learned preference reward, 3 seeds",
            rewards=("scene", "pref"),
            budget=1024,
            agent_overrides={"sb3ppo": {"batch_size": 16}},
            agent_budgets={"sb3ppo": 128},
            eval_every=256,
        ),
        Preset(
            "agents",
            ("base", "grpo", "dpo", "ppo", "reinforce"),
            "the agent zoo's bar: each native agent against the base generator on the checker, 10 seeds, 4,096 images",
            variants=(Variant(), Variant("k2", {"samples_per_prompt": 2}, agents=("dpo",))),  # finding 3: DPO is best at K = 2
            seeds=10,
            budget=4096,
            eval_every=2048,
            eval_prompts=50,
        ),
        Preset(
            "finding1",
            ("base", "best-of-4", "dpo", "grpo"),
            "finding 1: DPO vs GRPO (and best-of-4) under the checker, a preference model and an outcome model",
            rewards=("scene", "pref", "orm"),
            **_STUDY,
        ),
        Preset(
            "finding2",
            ("base", "dpo", "grpo"),
            "finding 2: a reward's out-of-domain ranking accuracy against the out-of-domain gain it buys",
            rewards=("pref", "pref-narrow", "scene"),
            generalization_prompts=300,
            **_STUDY,
        ),
        Preset(
            "ties",
            ("base", "grpo"),
            "finding 2's mechanism: GRPO on the checker with its ties broken by the preference model or at random",
            rewards=("scene", "scene+0.1*noise", "scene+0.005*pref", "scene+0.02*pref", "pref"),
            generalization_prompts=300,
            **_STUDY,
        ),
        Preset(
            "finding3",
            ("dpo", "grpo"),
            "finding 3: scaling the group size, the number and diversity of training prompts, and DPO's rounds",
            variants=(
                Variant(),  # K = 8 on all 7,000 prompts: finding 1's scene cells
                Variant("k2", _k(2)),
                Variant("p64", train_prompts=64),
                Variant("p64-spatial", train_prompts=64, train_categories=("spatial",)),
                *(Variant(f"r{r}", {"rounds": r}, agents=("dpo",)) for r in (1, 4)),
            ),
            **_STUDY,
        ),
        Preset(
            "lr-sweep",
            ("base", "grpo", "dpo"),
            "the study's learning rates: GRPO and DPO at three rates each on the checker, 1 seed, its budget",
            seeds=1,
            budget=2048,
            eval_every=0,
            eval_prompts=25,
            variants=(
                Variant("g-lr3e-5", {"learning_rate": 3e-5}, agents=("grpo",)),
                Variant("g-lr1e-4-none", {"learning_rate": 1e-4, "scale_rewards": "none"}, agents=("grpo",)),
                Variant("g-lr6e-5", {"learning_rate": 6e-5}, agents=("grpo",)),
                *(Variant(f"d-lr{lr:.0e}".replace("e-0", "e-"), {"learning_rate": lr}, agents=("dpo",)) for lr in (1e-5, 3e-5, 1e-4)),
            ),
        ),
        Preset(
            "gpu",
            ("base", "best-of-4", "grpo", "dpo"),
            "larger budgets and evaluation on Janus-Pro (needs a GPU and the local Janus-Pro weights)",
            generator="janus-pro",
            budget=16384,
            eval_every=4096,
            eval_prompts=50,
            eval_images_per_prompt=4,
        ),
    )
}


def get(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the presets.
    """
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is unknown; presets: {list(PRESETS)}")
    return PRESETS[name]
