from cotimage.agents.grpo.config import GRPOConfig
from cotimage.agents.grpo.grpo import GRPO, group_advantages, grpo_loss, k3_kl

__all__ = ["GRPO", "GRPOConfig", "group_advantages", "grpo_loss", "k3_kl"]
