"""The one cached chat model: labelling (teacher requests) and evaluation (benchmark predictions) both use it.

Key = sha256 of (model identity — :func:`labkit.llm.model_id`, so two emulators with different noise or two API
models never share answers —, messages, generation parameters). Storage = a :class:`~labkit.store.KeyedStore`
(append-only JSONL, one line per answered request, fsynced; a line torn by SIGKILL is ignored and cut off before the
next write), so a re-run repeats at most the request that was being written. An empty or whitespace-only answer is
returned but never stored (:meth:`RequestCache.put` refuses it, counted as ``usage.empty``): the request is made
again next time instead of replaying nothing for good.
The wrapper counts every request it forwards (failed ones too), tokens and cost. It does not retry: retries live in
one layer only, the client that knows the transport (:class:`~labkit.llm.openai_client.OpenAIChat`, whose attempt
and retry counters are reported here as ``requests`` / ``retries``). ``chat_batch`` sends all cache misses to the
model's own ``chat_batch`` at once (a local model batches them on the GPU/CPU, an API client sends them in parallel).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from labkit.store import KeyedStore
from labkit.types import ChatResult, Message

from .base import model_id


class GenParams(TypedDict):
    """The generation parameters that make up a cache key (:meth:`CachedChatModel.key`)."""

    max_new_tokens: int
    temperature: float
    stop: list[str] | None
    until: NotRequired[str]  # only when set, so caches written before the rule existed stay valid


class CachedAnswer(TypedDict):
    """One line of a request cache (:class:`RequestCache`): the request key and the answer's ChatResult fields."""

    key: str
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    meta: dict[str, Any]  # ChatResult.meta: the backend's extras


def request_key(model: str, messages: Sequence[Message], params: GenParams) -> str:
    blob = json.dumps({"model": model, "messages": list(messages), "params": params},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class RequestCache:
    """``request key -> ChatResult fields`` in a :class:`~labkit.store.KeyedStore` (thread-safe, crash-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store: KeyedStore[CachedAnswer] = KeyedStore(self.path, "key")

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer, or None; an empty answer stored by an older labkit counts as none (asked again)."""
        hit = self.store.get(key)
        return hit if hit is not None and str(hit.get("text") or "").strip() else None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def put(self, key: str, result: ChatResult) -> bool:
        """Store ``result`` under ``key`` (an answer already stored is kept); returns whether it was stored. An empty
        or whitespace-only text is refused (returns False): whatever the backend, an empty reply is a failed call,
        and a cached one would be replayed for good, so the request is made again next time."""
        if not result.text.strip() or key in self:
            return False
        return self.store.put({"key": key, "text": result.text, "model": result.model,
                               "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                               "meta": result.meta}, replace=key in self.store)  # replaces only an old empty one

    def __len__(self) -> int:
        return len(self.store)


@dataclass
class Usage:
    calls: int = 0          # requests forwarded to the model (cache misses), failed ones included
    cache_hits: int = 0
    failures: int = 0       # forwarded requests that raised (after the client's own retries)
    empty: int = 0          # answers that were empty or whitespace only (returned, never cached)
    requests: int = 0       # HTTP attempts, retries included (= calls for models without a transport)
    retries: int = 0        # attempts the client repeated (429, 5xx, timeouts, bad replies)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Every counter by name (the cost is the one float)."""
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

    @staticmethod
    def _params(max_new_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None,
                until: str | None = None) -> GenParams:
        """The generation parameters that make up a cache key (defaults filled in)."""
        params: GenParams = {"max_new_tokens": max_new_tokens, "temperature": temperature, "stop": stop}
        if until is not None:  # only when set (see GenParams)
            params["until"] = until
        return params

    def key(self, messages: Sequence[Message], **kw: Any) -> str:
        """The cache key of one request to this model (``kw``: max_new_tokens, temperature, stop, until)."""
        return request_key(str(self.mid), messages, self._params(**kw))

    def chat(self, messages: list[Message], **kw: Any) -> ChatResult:
        return self.chat_batch([messages], **kw)[0]

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        """Cached answers where the exact request was seen; the misses go to the model in one ``chat_batch``
        (one ``chat`` when there is a single miss). ``kw`` reaches the model unchanged."""
        params = self._params(**kw)
        keys = [request_key(str(self.mid), m, params) for m in batch]
        out: list[ChatResult | None] = []
        for k in keys:
            hit = self.cache.get(k)
            out.append(None if hit is None else ChatResult(hit["text"], hit["model"], hit["prompt_tokens"],
                                                           hit["completion_tokens"], cached=True,
                                                           meta=dict(hit.get("meta") or {})))
        first_miss: dict[str, int] = {}  # a request repeated within the batch is asked once
        for i, r in enumerate(out):
            if r is None:
                first_miss.setdefault(keys[i], i)
        misses = list(first_miss.values())
        with self._lock:
            self.usage.cache_hits += sum(r is not None for r in out)
            self.usage.calls += len(misses)
        if misses:
            try:
                results = self._ask([batch[i] for i in misses], kw)
            except Exception:
                with self._lock:
                    self.usage.failures += len(misses)
                raise
            finally:
                self._count_transport()
            for i, result in zip(misses, results):
                self.cache.put(keys[i], result)  # refuses an empty answer
            fresh = {keys[i]: r for i, r in zip(misses, results)}
            out = [fresh[k] if r is None else r for k, r in zip(keys, out)]
            with self._lock:
                u = self.usage
                u.empty += sum(not r.text.strip() for r in results)
                for result in results:
                    u.prompt_tokens += result.prompt_tokens
                    u.completion_tokens += result.completion_tokens
                    u.cost += (result.prompt_tokens * self.price_per_1k_prompt
                               + result.completion_tokens * self.price_per_1k_completion) / 1000
        return out  # type: ignore[return-value]

    def _ask(self, asked: list[list[Message]], kw: dict[str, Any]) -> list[ChatResult]:
        model = self.model
        if hasattr(model, "chat") and (len(asked) == 1 or not hasattr(model, "chat_batch")):
            return [model.chat(m, **kw) for m in asked]
        return list(model.chat_batch(asked, **kw))

    @property
    def identity(self) -> str:
        return str(self.mid)

    def _count_transport(self) -> None:
        """Copy the client's attempt/retry counters (since this wrapper was made) into the usage."""
        (req0, ret0), model = self._base, self.model
        with self._lock:
            self.usage.requests = model.requests - req0 if req0 is not None else self.usage.calls
            self.usage.retries = model.retries - ret0 if ret0 is not None else 0
