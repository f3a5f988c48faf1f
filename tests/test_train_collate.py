"""Loss masks, truncation, length grouping inputs, config loading and data errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from labkit.chat import END_OF_TURN, render_chat
from labkit.errors import DataFileError
from labkit.train.collate import IGNORE_INDEX, PadCollator, SFTDataset, encode_messages, load_samples
from labkit.train.config import TrainSettings
from train_helpers import GEMMA_DIR, make_samples, write_samples

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(str(GEMMA_DIR))


def _supervised_text(tok, enc) -> str:
    return tok.decode([t for t, lab in zip(enc.input_ids, enc.labels) if lab != IGNORE_INDEX])


def test_only_assistant_turns_are_supervised(tok):
    msgs = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "今天北京天气?"},
            {"role": "assistant", "content": "Action: get_weather_info"},
            {"role": "user", "content": "Observation: 晴"}, {"role": "assistant", "content": "Final Answer: 晴天"}]
    enc = encode_messages(msgs, tok, 4096)
    assert _supervised_text(tok, enc) == "Action: get_weather_info" + END_OF_TURN + "Final Answer: 晴天" + END_OF_TURN
    # the full sequence is exactly <bos> + our chat rendering
    assert tok.decode(enc.input_ids) == tok.bos_token + render_chat(msgs, add_generation_prompt=False)
    assert enc.labels[0] == IGNORE_INDEX


def test_loss_false_turn_is_not_supervised(tok):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "old", "loss": False},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "new"}]
    assert _supervised_text(tok, encode_messages(msgs, tok, 4096)) == "new" + END_OF_TURN


def test_a_prompt_is_never_cut(tok):
    """Cutting would drop the instructions / tool list (left) or the goal (right): the sample goes whole or not."""
    msgs = [{"role": "user", "content": "很长的提示。" * 200}, {"role": "assistant", "content": "Final Answer: 42"}]
    full = encode_messages(msgs, tok)
    assert len(full.input_ids) > 64 and encode_messages(msgs, tok, 64) is None
    assert encode_messages(msgs, tok, len(full.input_ids)).input_ids == full.input_ids


def test_drops_samples_longer_than_max_len_and_says_so(tok):
    long_answer = {"id": "long", "messages": [{"role": "user", "content": "q"},
                                              {"role": "assistant", "content": "答案" * 300}]}
    long_prompt = {"id": "long_prompt", "messages": [{"role": "user", "content": "提示" * 300},
                                                     {"role": "assistant", "content": "ok"}]}
    with pytest.warns(UserWarning, match="2 of 5 samples are longer than max_len=128"):
        ds = SFTDataset([long_answer, long_prompt] + make_samples(3), tok, max_len=128)
    assert len(ds) == 3 and ds.stats.dropped_too_long == 2 and ds.stats.dropped_ids == ["long", "long_prompt"]
    assert ds.stats.longest > 128 and max(ds.lengths()) <= 128


def test_collator_pads_right_without_mixing_samples(tok):
    ds = SFTDataset(make_samples(3), tok, max_len=512)
    batch = PadCollator(tok.pad_token_id)([ds[0], ds[2]])
    n0, n2 = len(ds[0]["input_ids"]), len(ds[2]["input_ids"])
    assert batch["input_ids"].shape == (2, max(n0, n2))
    assert batch["attention_mask"][0].sum() == n0 and batch["attention_mask"][1].sum() == n2
    assert (batch["labels"][0, n0:] == IGNORE_INDEX).all()
    assert batch["input_ids"][0, :n0].tolist() == ds[0]["input_ids"]


def test_load_samples_names_file_line_and_field(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    good = json.dumps(make_samples(1)[0], ensure_ascii=False)
    bad = json.dumps({"id": "x", "messages": [{"role": "robot", "content": "hi"}]})
    path.write_text(good + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        load_samples(path)
    assert err.value.line == 2 and err.value.field == "messages[0].role" and str(path) in str(err.value)
    path.write_text(good + "\n" + json.dumps({"id": "y", "messages": [{"role": "user", "content": "q"}]}) + "\n")
    with pytest.raises(DataFileError, match="no supervised"):
        load_samples(path)
    assert len(load_samples(write_samples(tmp_path / "ok.jsonl", 5), max_samples=2)) == 2


def test_config_yaml_cli_and_unknown_keys(tmp_path: Path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("max_len: 768\nlr: 1e-5\nmax_steps: 10\ndeepspeed: null\n")
    cfg = TrainSettings.from_cli(["--config", str(cfg_file), "--batch_size", "2", "--lr=3e-5", "--group_by_length", "false"])
    assert (cfg.max_len, cfg.batch_size, cfg.lr, cfg.group_by_length, cfg.max_steps) == (768, 2, 3e-5, False, 10)
    assert cfg.max_len != TrainSettings().max_len == 4096
    with pytest.raises(DataFileError) as err:
        TrainSettings.from_cli(["--config", str(cfg_file), "--max_lenn", "5"])
    assert err.value.field == "max_lenn"
    with pytest.raises(DataFileError, match="expected int"):
        TrainSettings.from_cli(["--max_len", "long"])
    with pytest.raises(Exception, match="precision"):
        TrainSettings(precision="fp8")
