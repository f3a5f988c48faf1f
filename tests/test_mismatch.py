"""Files that do not fit together fail early and clearly, and nothing already there is rewritten: another model's
checkpoint in a training folder, a tokenizer bigger than the model's vocabulary (train and eval), another model's
results in an evaluation folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from train_helpers import GEMMA_DIR, tiny_model_dir, write_samples

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


def small_vocab_model(out: Path, *, with_tokenizer: bool) -> Path:
    """A random 1-layer Gemma-3 with a 512-token embedding (too small for the Gemma tokenizer)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=512, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                              num_attention_heads=1, num_key_value_heads=1, head_dim=16, sliding_window=32,
                              layer_types=["full_attention"], bos_token_id=2, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(out)
    if with_tokenizer:
        from labkit.llm import load_tokenizer

        load_tokenizer().save_pretrained(out)
    return out


def test_resuming_into_another_models_folder_fails_before_rewriting_it(tmp_path: Path) -> None:
    from labkit.train import TrainSettings, train

    out = tmp_path / "out"
    ckpt = out / "checkpoint-4"
    ckpt.mkdir(parents=True)
    small_vocab_model(tmp_path / "other", with_tokenizer=False)
    shutil.copy(tmp_path / "other" / "config.json", ckpt / "config.json")
    (out / "labkit_train_config.json").write_text('{"model_path": "the other model"}')
    cfg = TrainSettings(model_path=str(tiny_model_dir()), data_path=str(write_samples(tmp_path / "t.jsonl", 4)),
                    output_dir=str(out), max_steps=2, max_len=128)
    with pytest.raises(LabkitError, match=r"checkpoint-4 holds a checkpoint of another model .*hidden_size: 16 "
                                          r"there vs 64.*new output_dir"):
        train(cfg)
    assert json.loads((out / "labkit_train_config.json").read_text()) == {"model_path": "the other model"}
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-4", "labkit_train_config.json"]


def test_tokenizer_bigger_than_the_vocabulary_fails_clearly_in_train_and_eval(tmp_path: Path) -> None:
    from labkit.llm import LocalHFModel
    from labkit.train import TrainSettings, train

    bare = small_vocab_model(tmp_path / "bare", with_tokenizer=False)  # gets the Gemma tokenizer at load
    with pytest.raises(LabkitError, match=r"vocab_size=512 but its tokenizer .* 262144 token ids"):
        LocalHFModel(bare)
    paired = small_vocab_model(tmp_path / "paired", with_tokenizer=True)
    cfg = TrainSettings(model_path=str(paired), data_path=str(write_samples(tmp_path / "t.jsonl", 4)),
                    output_dir=str(tmp_path / "out"), max_steps=1, max_len=64)
    with pytest.raises(LabkitError, match=r"paired/config.json: the model has vocab_size=512"):
        train(cfg)
    assert not (tmp_path / "out" / "labkit_train_config.json").exists()
