"""A crash-safe on-disk cache of teacher requests, and a ChatModel wrapper that uses it.

Key = sha256 of (model identity — :func:`labkit.llm.model_id`, so two emulators with different noise or two API
models never share answers —, messages, generation parameters). Storage = append-only JSONL, one line per answered
request, fsynced; a line torn by SIGKILL is cut off on the next open, so a re-run repeats at most that request.
The wrapper counts every request it forwards (failed ones too), tokens and cost. It does not retry: retries live in
one layer only, the client that knows the transport (:class:`~labkit.llm.openai_client.OpenAIChat`, whose attempt
and retry counters are reported here as ``requests`` / ``retries``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.jsonl import append_jsonl, iter_jsonl
from labkit.llm.base import model_id
from labkit.types import ChatResult, Message


def repair_jsonl_tail(path: str | Path) -> int:
    """Cut a torn (unterminated) last line off ``path``; returns the number of bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        fh.seek(0)
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


def request_key(model: str, messages: Sequence[Message], params: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "messages": list(messages), "params": params},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RequestCache:
    """Append-only JSONL map ``key -> ChatResult fields``. Thread-safe."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_jsonl_tail(self.path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for _, rec in iter_jsonl(self.path):
                self._entries[rec["key"]] = rec

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, result: ChatResult) -> None:
        rec = {"key": key, "text": result.text, "model": result.model, "prompt_tokens": result.prompt_tokens,
               "completion_tokens": result.completion_tokens, "meta": result.meta}
        with self._lock:
            if key in self._entries:
                return
            append_jsonl(self.path, [rec])
            self._entries[key] = rec

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Usage:
    calls: int = 0          # requests forwarded to the model (cache misses), failed ones included
    cache_hits: int = 0
    failures: int = 0       # forwarded requests that raised (after the client's own retries)
    requests: int = 0       # HTTP attempts, retries included (= calls for models without a transport)
    retries: int = 0        # attempts the client repeated (429, 5xx, timeouts, bad replies)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CachedChatModel:
    """Wrap any ChatModel: answer from the cache when the exact request was seen, else call it once."""

    model: Any
    cache: RequestCache
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    usage: Usage = field(default_factory=Usage)
    mid: str | None = None  # the model identity in cache keys (default: labkit.llm.model_id(model))

    def __post_init__(self) -> None:
        self.name: str = self.model.name
        self.mid = self.mid or model_id(self.model)
        self._lock = threading.Lock()
        self._base = (getattr(self.model, "requests", None), getattr(self.model, "retries", None))

    def chat(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None) -> ChatResult:
        params = {"max_new_tokens": max_new_tokens, "temperature": temperature, "stop": stop}
        key = request_key(self.mid, messages, params)
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.usage.cache_hits += 1
            return ChatResult(hit["text"], hit["model"], hit["prompt_tokens"], hit["completion_tokens"],
                              cached=True, meta=dict(hit.get("meta") or {}))
        with self._lock:
            self.usage.calls += 1
        try:
            result = self.model.chat(messages, **params)
        except Exception:
            with self._lock:
                self.usage.failures += 1
            raise
        finally:
            self._count_transport()
        self.cache.put(key, result)
        with self._lock:
            u = self.usage
            u.prompt_tokens += result.prompt_tokens
            u.completion_tokens += result.completion_tokens
            u.cost += (result.prompt_tokens * self.price_per_1k_prompt
                       + result.completion_tokens * self.price_per_1k_completion) / 1000
        return result

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]

    @property
    def identity(self) -> str:
        return str(self.mid)

    def _count_transport(self) -> None:
        """Copy the client's attempt/retry counters (since this wrapper was made) into the usage."""
        (req0, ret0), model = self._base, self.model
        with self._lock:
            self.usage.requests = model.requests - req0 if req0 is not None else self.usage.calls
            self.usage.retries = model.retries - ret0 if ret0 is not None else 0
