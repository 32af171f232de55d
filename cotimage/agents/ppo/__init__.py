from cotimage.agents.ppo.config import PPOConfig
from cotimage.agents.ppo.ppo import PPO, gae, ppo_loss

__all__ = ["PPO", "PPOConfig", "gae", "ppo_loss"]
