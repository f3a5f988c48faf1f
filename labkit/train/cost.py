"""Training cost calculator: the course note's table, and estimates for new runs from 6·N·tokens FLOPs.

Note's rows: 470M tokens per epoch on A100-80G at 34.742 元 per GPU-hour; cost = price × GPUs × hours.
Estimate: hours = tokens × 6·N × epochs / (GPUs × peak FLOP/s × MFU). The note's own hours imply the MFU.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

GPU_HOUR_PRICE_CNY = 34.742
A100_BF16_PEAK_FLOPS = 312e12  # dense bf16 tensor-core peak, FLOP/s
NOTE_TOKENS = 470e6


@dataclass(frozen=True)
class CostRow:
    model: str
    params: float  # N, number of parameters
    gpus: int
    epochs: float
    hours_per_epoch: float
    tokens: float = NOTE_TOKENS  # per epoch
    price_per_gpu_hour: float = GPU_HOUR_PRICE_CNY

    @property
    def hours(self) -> float:
        return self.hours_per_epoch * self.epochs

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.hours

    @property
    def cost_cny(self) -> float:
        return round(self.price_per_gpu_hour * self.gpu_hours, 1)

    @property
    def train_flops(self) -> float:
        return 6.0 * self.params * self.tokens * self.epochs

    def mfu(self, peak_flops: float = A100_BF16_PEAK_FLOPS) -> float:
        """Model FLOPs utilisation these hours imply."""
        return self.train_flops / (self.gpus * peak_flops * self.hours * 3600.0)


NOTE_ROWS: tuple[CostRow, ...] = (
    CostRow("7B", 7e9, gpus=4, epochs=5, hours_per_epoch=25),
    CostRow("14B", 14e9, gpus=8, epochs=4, hours_per_epoch=24),
    CostRow("72B", 72e9, gpus=32, epochs=2, hours_per_epoch=40),
)


def implied_mfu(row: CostRow, peak_flops: float = A100_BF16_PEAK_FLOPS) -> float:
    return row.mfu(peak_flops)


def cost_table(rows: tuple[CostRow, ...] | list[CostRow] = NOTE_ROWS) -> pd.DataFrame:
    """One line per row, with the note's columns plus the MFU the hours imply."""
    return pd.DataFrame([{
        "模型": f"{r.model} (全参数)", "最低配置": f"{r.gpus}卡A100({r.gpus} * 80G)", "tokens": f"{r.tokens / 1e6:.0f}M",
        "epochs": r.epochs, "每epoch(h)": r.hours_per_epoch, "总时长(h)": r.hours, "GPU·h": r.gpu_hours,
        "成本(元)": r.cost_cny, "implied MFU": round(r.mfu(), 4),
    } for r in rows])


def note_table() -> pd.DataFrame:
    """The course note's cost table, reproduced."""
    return cost_table(NOTE_ROWS)


def estimate_hours(params: float, tokens: float, epochs: float, gpus: int, mfu: float,
                   peak_flops: float = A100_BF16_PEAK_FLOPS) -> float:
    """Wall-clock hours for full fine-tuning: 6·N FLOPs per token (forward + backward)."""
    if min(params, tokens, epochs, gpus, mfu, peak_flops) <= 0:
        raise ValueError("params, tokens, epochs, gpus, mfu and peak_flops must all be positive")
    return 6.0 * params * tokens * epochs / (gpus * peak_flops * mfu) / 3600.0


def estimate(model: str, params: float, tokens: float, epochs: float, gpus: int, mfu: float,
             peak_flops: float = A100_BF16_PEAK_FLOPS, price: float = GPU_HOUR_PRICE_CNY) -> CostRow:
    """A new row priced like the note's: hours from FLOPs at the given MFU."""
    hours = estimate_hours(params, tokens, epochs, gpus, mfu, peak_flops)
    return CostRow(model, params, gpus=gpus, epochs=epochs, hours_per_epoch=hours / epochs, tokens=tokens,
                   price_per_gpu_hour=price)
