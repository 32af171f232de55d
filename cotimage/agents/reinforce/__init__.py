from cotimage.agents.reinforce.config import REINFORCEConfig
from cotimage.agents.reinforce.reinforce import REINFORCE, baseline_advantages, reinforce_loss

__all__ = ["REINFORCE", "REINFORCEConfig", "baseline_advantages", "reinforce_loss"]
