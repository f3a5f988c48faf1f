"""A crash-safe on-disk cache of teacher requests, and a ChatModel wrapper that uses it.

Key = sha256 of (model name, messages, generation parameters). Storage = append-only JSONL, one line per answered
request, fsynced; a line torn by SIGKILL is cut off on the next open, so a re-run repeats at most that request.
The wrapper also retries transient API errors (tenacity) and counts calls, tokens and cost.
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

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from labkit.jsonl import append_jsonl, iter_jsonl
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


def transient_errors() -> tuple[type[BaseException], ...]:
    """The client errors worth retrying (rate limits, timeouts, 5xx, dropped connections)."""
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        import openai

        errors += [openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
                   openai.InternalServerError]
    except ImportError:  # pragma: no cover - openai is a dependency
        pass
    return tuple(errors)


@dataclass
class Usage:
    calls: int = 0          # requests actually sent to the teacher
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CachedChatModel:
    """Wrap any ChatModel: answer from the cache when the exact request was seen, else call (with retries)."""

    model: Any
    cache: RequestCache
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    max_attempts: int = 5
    retry_on: tuple[type[BaseException], ...] = field(default_factory=transient_errors)
    retry_wait: Any = field(default_factory=lambda: wait_exponential_jitter(initial=1, max=30))
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.name: str = self.model.name
        self._lock = threading.Lock()

    def chat(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None, until: str | None = None) -> ChatResult:
        params: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature, "stop": stop}
        if until is not None:  # only when set, so caches written before the rule existed stay valid
            params["until"] = until
        key = request_key(self.name, messages, params)
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.usage.cache_hits += 1
            return ChatResult(hit["text"], hit["model"], hit["prompt_tokens"], hit["completion_tokens"],
                              cached=True, meta=dict(hit.get("meta") or {}))
        result = self._call(messages, params)
        self.cache.put(key, result)
        with self._lock:
            u = self.usage
            u.calls += 1
            u.prompt_tokens += result.prompt_tokens
            u.completion_tokens += result.completion_tokens
            u.cost += (result.prompt_tokens * self.price_per_1k_prompt
                       + result.completion_tokens * self.price_per_1k_completion) / 1000
        return result

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]

    def _call(self, messages: list[Message], params: dict[str, Any]) -> ChatResult:
        retrying = Retrying(retry=retry_if_exception_type(self.retry_on), stop=stop_after_attempt(self.max_attempts),
                            wait=self.retry_wait, reraise=True,
                            before_sleep=lambda _: self._count_retry())
        return retrying(self.model.chat, messages, **params)

    def _count_retry(self) -> None:
        with self._lock:
            self.usage.retries += 1
