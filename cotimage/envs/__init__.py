"""Gymnasium environments: ``CotImage-v0`` and its native vector form."""

from cotimage.envs.cotimage_env import NOT_DRAWN, CotImageEnv
from cotimage.envs.vector_env import CotImageVectorEnv

__all__ = ["NOT_DRAWN", "CotImageEnv", "CotImageVectorEnv"]
