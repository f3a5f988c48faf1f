"""Training stage: SFT config, tokenisation with loss masks, HF Trainer (+ DeepSpeed ZeRO-3), cost calculator."""

from labkit.train.config import TrainSettings
from labkit.train.cost import CostRow, cost_table, estimate, estimate_hours, implied_mfu, note_table
from labkit.train.trainer import Preempted, TrainResult, train

__all__ = ["TrainSettings", "TrainResult", "Preempted", "train", "CostRow", "cost_table", "estimate",
           "note_table", "estimate_hours", "implied_mfu"]
