"""Shared fixtures for the training tests: fixture samples in the training format, a tiny Gemma-3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.jsonl import write_jsonl

GEMMA_DIR = Path.home() / ".cache" / "labkit" / "gemma-3-270m"


def make_samples(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        a, b = i % 7 + 1, i % 5 + 2
        rows.append({
            "id": f"s{i}", "source": "agent", "query_id": f"q{i}", "template": "react", "step": 0,
            "messages": [
                {"role": "user", "content": f"问题 {i}: 计算 {a} 乘以 {b}。请使用 calculator 工具。" * (1 + i % 3)},
                {"role": "assistant", "content": f'Thought: 先计算\nAction: calculator\nAction Input: {{"expression": "{a}*{b}"}}',
                 "loss": True},
            ],
        })
    return rows


def write_samples(path: Path, n: int) -> Path:
    write_jsonl(path, make_samples(n))
    return path


def tiny_model_dir() -> Path:
    """Tiny random Gemma-3 with the real tokenizer, built once per machine under the labkit cache."""
    from labkit.train.tiny import tiny_model_dir as build

    return build()
