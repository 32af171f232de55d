"""stable-baselines3's PPO with the pretrained shapes transformer as its policy, behind our agent surface."""

from cotimage.agents.sb3.policy import PretrainedTokenPolicy, TokenFeaturesExtractor
from cotimage.agents.sb3.sb3ppo import SB3PPO, SB3PPOConfig

__all__ = ["SB3PPO", "PretrainedTokenPolicy", "SB3PPOConfig", "TokenFeaturesExtractor"]
