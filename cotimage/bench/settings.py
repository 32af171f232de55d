"""Per-agent hyperparameters of the benchmarks: the one place to tune them.

Adam's steps are about ``learning_rate`` per weight whatever the gradient's size, so RL on the
pretrained policy needs a small rate: GRPO on 3,072 images moved compbench-val by -0.053 at
1e-4, +0.029 at 1e-5 and +0.034 at 3e-5.
"""

from __future__ import annotations

from typing import Any

#: Config-field values per agent (``cotimage.agents.registry()`` names); the fields not named
#: keep their config defaults. Presets add ``batch_size`` and variants override on top.
AGENT_SETTINGS: dict[str, dict[str, Any]] = {
    "grpo": {"learning_rate": 3e-5, "group_size": 8, "beta": 0.01},
    "reinforce": {"learning_rate": 3e-5, "group_size": 8},
    "ppo": {"learning_rate": 3e-5, "minibatch_size": 32},
    "dpo": {"learning_rate": 1e-5, "mode": "online", "samples_per_prompt": 8},
    "sb3ppo": {"learning_rate": 1e-5},
}
