"""Do a checkpoint's files fit together? Architecture and vocabulary checks with errors that name the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.errors import DataFileError, LabkitError
from labkit.jsonl import read_json

ARCH_FIELDS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size",
               "num_attention_heads", "num_key_value_heads", "head_dim")


def model_config(model_dir: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint dir (a multimodal config's ``text_config`` merged in)."""
    path = Path(model_dir) / "config.json"
    config = read_json(path)
    if not isinstance(config, dict):
        raise DataFileError(path, "expected a JSON object")
    text = config.get("text_config")
    return {**config, **text} if isinstance(text, dict) else config


def architecture(model_dir: str | Path) -> dict[str, Any]:
    """The config fields that decide the weights' shapes (a checkpoint of another model differs in one of them)."""
    config = model_config(model_dir)
    return {k: config[k] for k in ARCH_FIELDS if k in config}


def check_vocab(tokenizer: Any, model_dir: str | Path) -> None:
    """Raise when the tokenizer can produce ids the model's embedding does not have (a raw IndexError later)."""
    vocab = model_config(model_dir).get("vocab_size")
    if not isinstance(vocab, int):
        return
    specials = [i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id)
                if isinstance(i, int)]
    size = max([len(tokenizer), *(i + 1 for i in specials)])
    if size > vocab:
        raise LabkitError(
            f"{Path(model_dir) / 'config.json'}: the model has vocab_size={vocab} but its tokenizer "
            f"({getattr(tokenizer, 'name_or_path', '?')}) has {size} token ids: ids >= {vocab} would crash the "
            "embedding. Use the tokenizer saved with this model, or a model built for this tokenizer.")
