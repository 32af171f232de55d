"""The agent zoo: every agent collects through ``CotImage-v0`` and shares ``learn / predict / save / load``."""

from cotimage.agents.common.agent import Agent
from cotimage.agents.common.config import AgentConfig
from cotimage.agents.dpo import DPO, DPOConfig
from cotimage.agents.grpo import GRPO, GRPOConfig
from cotimage.agents.ppo import PPO, PPOConfig
from cotimage.agents.reinforce import REINFORCE, REINFORCEConfig


def __getattr__(name: str):
    """``SB3PPO`` and ``SB3PPOConfig`` on first use, so that stable-baselines3 loads only when asked for."""
    if name in ("SB3PPO", "SB3PPOConfig"):
        from cotimage.agents import sb3

        return getattr(sb3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def registry() -> dict[str, type[Agent]]:
    """Agents by command-line name (SB3PPO imports lazily: stable-baselines3 loads only when asked for)."""
    from cotimage.agents.sb3 import SB3PPO

    return {"grpo": GRPO, "dpo": DPO, "ppo": PPO, "sb3ppo": SB3PPO, "reinforce": REINFORCE}


__all__ = [
    "DPO", "GRPO", "PPO", "REINFORCE", "SB3PPO", "Agent", "AgentConfig", "DPOConfig", "GRPOConfig", "PPOConfig",
    "REINFORCEConfig", "SB3PPOConfig", "registry",
]
