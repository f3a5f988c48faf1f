"""Loss masks, truncation, length grouping inputs, config loading and data errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from labkit.chat import END_OF_TURN, render_chat
from labkit.errors import DataFileError
from labkit.train.collate import IGNORE_INDEX, PadCollator, SFTDataset, encode_messages, load_samples
from labkit.train.config import SFTConfig
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
    assert enc.labels[0] == IGNORE_INDEX and not enc.truncated


def test_loss_false_turn_is_not_supervised(tok):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "old", "loss": False},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "new"}]
    assert _supervised_text(tok, encode_messages(msgs, tok, 4096)) == "new" + END_OF_TURN


def test_truncates_prompt_from_the_left_and_keeps_response(tok):
    msgs = [{"role": "user", "content": "很长的提示。" * 200}, {"role": "assistant", "content": "Final Answer: 42"}]
    full = encode_messages(msgs, tok, 100000)
    enc = encode_messages(msgs, tok, 64)
    assert len(full.input_ids) > 64 and len(enc.input_ids) == 64 and enc.truncated
    assert enc.input_ids[0] == tok.bos_token_id
    assert enc.input_ids[1:] == full.input_ids[-63:]
    assert _supervised_text(tok, enc) == "Final Answer: 42" + END_OF_TURN


def test_drops_samples_whose_response_alone_is_too_long(tok):
    long = {"id": "long", "messages": [{"role": "user", "content": "q"},
                                       {"role": "assistant", "content": "答案" * 300}]}
    ds = SFTDataset([long] + make_samples(3), tok, max_len=128)
    assert len(ds) == 3 and ds.stats.dropped_too_long == 1 and ds.stats.dropped_ids == ["long"]


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
    cfg = SFTConfig.from_cli(["--config", str(cfg_file), "--batch_size", "2", "--lr=3e-5", "--group_by_length", "false"])
    assert (cfg.max_len, cfg.batch_size, cfg.lr, cfg.group_by_length, cfg.max_steps) == (768, 2, 3e-5, False, 10)
    assert cfg.max_len != SFTConfig().max_len == 4096
    with pytest.raises(DataFileError) as err:
        SFTConfig.from_cli(["--config", str(cfg_file), "--max_lenn", "5"])
    assert err.value.field == "max_lenn"
    with pytest.raises(DataFileError, match="expected int"):
        SFTConfig.from_cli(["--max_len", "long"])
    with pytest.raises(Exception, match="precision"):
        SFTConfig(precision="fp8")
