"""LocalHFModel on the tiny random Gemma3 (fast) and on the real gemma-3-270m (slow); the cached-build helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.chat import CHAT_TEMPLATE, render_chat
from labkit.errors import LabkitError, UnknownNameError
from labkit.llm import LocalHFModel, ensure_gemma, get_model, load_tokenizer
from labkit.llm.local import build_once, is_complete

CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
OTHER = [{"role": "user", "content": "Name a city in China, please, and say why it is famous."}]


@pytest.fixture(scope="module")
def tiny() -> LocalHFModel:
    return LocalHFModel("tiny")


def test_tokenizer_has_our_chat_template() -> None:
    tok = load_tokenizer()
    assert tok.chat_template == CHAT_TEMPLATE and len(tok) == 262144
    text = tok.apply_chat_template(CONV, tokenize=False, add_generation_prompt=True)
    assert text == tok.bos_token + render_chat(CONV)


def test_tiny_is_gemma3_with_real_tokenizer(tiny: LocalHFModel) -> None:
    cfg = tiny.model.config
    assert cfg.model_type == "gemma3_text" and cfg.num_hidden_layers == 2 and cfg.vocab_size == 262144
    assert tiny.tokenizer.chat_template == CHAT_TEMPLATE
    assert tiny.name == "tiny"


def test_chat_is_greedy_deterministic_and_counts_tokens(tiny: LocalHFModel) -> None:
    a = tiny.chat(CONV, max_new_tokens=6)
    b = tiny.chat(CONV, max_new_tokens=6)
    assert a == b and a.text and a.model == "tiny"
    n_prompt = len(tiny.tokenizer(tiny.tokenizer.bos_token + render_chat(CONV), add_special_tokens=False).input_ids)
    assert a.prompt_tokens == n_prompt and a.completion_tokens == 6


def test_batch_matches_single_with_left_padding(tiny: LocalHFModel) -> None:
    batch = tiny.chat_batch([CONV, OTHER], max_new_tokens=5)
    assert [r.text for r in batch] == [tiny.chat(CONV, max_new_tokens=5).text, tiny.chat(OTHER, max_new_tokens=5).text]
    assert batch[0].prompt_tokens < batch[1].prompt_tokens and tiny.chat_batch([]) == []


def test_stops_at_end_marker_token(tiny: LocalHFModel) -> None:
    first = tiny.tokenizer(tiny.chat(CONV, max_new_tokens=1).text, add_special_tokens=False).input_ids[0]
    saved = tiny.stop_ids
    tiny.stop_ids = saved + [first]  # pretend the first token it generates is <end_of_turn>
    try:
        res = tiny.chat(CONV, max_new_tokens=6)
    finally:
        tiny.stop_ids = saved
    assert res.text == "" and res.completion_tokens == 1


def test_stop_strings_cut_the_text(tiny: LocalHFModel) -> None:
    full = tiny.chat(OTHER, max_new_tokens=8).text
    stop = full[len(full) // 2: len(full) // 2 + 2]
    cut = tiny.chat(OTHER, max_new_tokens=8, stop=[stop]).text
    assert cut == full[: full.index(stop)]


def test_bad_model_names() -> None:
    with pytest.raises(LabkitError, match="no config.json"):
        LocalHFModel("/nonexistent/checkpoint")
    with pytest.raises(UnknownNameError, match="gemma-3-270m"):
        get_model("no-such-model")


def test_build_once_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    calls: list[Path] = []

    def broken(out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed mid-build")

    def good(out: Path) -> None:
        calls.append(out)
        out.mkdir()
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            (out / name).write_text("x")

    with pytest.raises(RuntimeError):
        build_once("m", broken)
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.tmp-*"))
    assert is_complete(build_once("m", good)) and build_once("m", good) == tmp_path / "m"
    assert len(calls) == 1  # second call found the complete dir


def test_ensure_gemma_reuses_complete_cache() -> None:
    path = ensure_gemma()
    assert is_complete(path) and path.name == "gemma-3-270m"


@pytest.mark.slow
def test_real_gemma_generates_text() -> None:
    model = get_model("gemma-3-270m")
    res = model.chat([{"role": "user", "content": "The capital of France is"}], max_new_tokens=8)
    assert res.text.strip() and 1 <= res.completion_tokens <= 8 and res.model == "gemma-3-270m"
