"""cotimage: token-by-token autoregressive image generation as a reinforcement-learning problem.

``import cotimage`` registers ``CotImage-v0`` with Gymnasium::

    import gymnasium as gym
    env = gym.make("CotImage-v0")                       # the embedded shapes world
    envs = gym.make_vec("CotImage-v0", num_envs=64, vectorization_mode="vector_entry_point")
"""

from gymnasium.envs.registration import register, registry

from cotimage.evaluation import evaluate

__version__ = "0.1.0"

if "CotImage-v0" not in registry:
    register(
        id="CotImage-v0",
        entry_point="cotimage.envs:CotImageEnv",
        vector_entry_point="cotimage.envs:CotImageVectorEnv",
    )

__all__ = ["evaluate"]
