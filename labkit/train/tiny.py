"""Model names for training: ``"tiny"`` and ``"gemma-3-270m"`` resolve exactly as :mod:`labkit.llm` resolves them."""

from __future__ import annotations

from pathlib import Path


def resolve_model_path(name_or_path: str) -> str:
    """``"tiny"`` -> the tiny random Gemma-3 (built once, atomically); ``"gemma-3-270m"`` -> the cached real model;
    else a checkpoint directory (must hold a config.json; the error names the path)."""
    from labkit.llm.local import resolve_model_dir

    return str(resolve_model_dir(name_or_path))


def tiny_model_dir() -> Path:
    """The tiny random Gemma-3 with the real tokenizer that tests and smoke runs train."""
    from labkit.llm.local import ensure_tiny

    return ensure_tiny()
