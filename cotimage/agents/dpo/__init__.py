"""DPO (Rafailov et al., 2023) on image pairs: offline, online and iterative.

``python -m cotimage.agents.dpo.collect`` writes an offline pair dataset.
"""

from cotimage.agents.common.pairs import PairDataset, collect_pairs, make_pairs
from cotimage.agents.dpo.config import DPOConfig
from cotimage.agents.dpo.dpo import DPO, dpo_loss

__all__ = ["DPO", "DPOConfig", "PairDataset", "collect_pairs", "dpo_loss", "make_pairs"]
