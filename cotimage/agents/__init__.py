"""The agent zoo: every agent collects through ``CotImage-v0`` and shares ``learn / predict / save / load``."""

from cotimage.agents.common.agent import Agent
from cotimage.agents.common.config import AgentConfig
from cotimage.agents.grpo import GRPO, GRPOConfig

__all__ = ["GRPO", "Agent", "AgentConfig", "GRPOConfig"]
