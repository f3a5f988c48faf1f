"""The teacher request cache: exact-request keys, torn-tail repair, retries on transient errors, usage counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tenacity import wait_none

from labkit.data.cache import CachedChatModel, RequestCache, repair_jsonl_tail, request_key
from labkit.types import ChatResult, Message


class CountingModel:
    name = "counting"

    def __init__(self, fail_first: int = 0):
        self.calls, self.fail_first = 0, fail_first

    def chat(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None, until: str | None = None) -> ChatResult:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise TimeoutError("simulated rate limit / timeout")
        return ChatResult(f"echo {messages[-1]['content']}", self.name, prompt_tokens=1000, completion_tokens=500)


def test_key_depends_on_model_messages_and_params() -> None:
    m = [{"role": "user", "content": "hi"}]
    base = request_key("a", m, {"temperature": 0})
    assert base == request_key("a", [{"role": "user", "content": "hi"}], {"temperature": 0})
    assert len({base, request_key("b", m, {"temperature": 0}), request_key("a", m, {"temperature": 1}),
                request_key("a", [{"role": "user", "content": "hi!"}], {"temperature": 0})}) == 4


def test_second_run_makes_zero_calls_and_counts_cost(tmp_path: Path) -> None:
    inner = CountingModel()
    model = CachedChatModel(inner, RequestCache(tmp_path / "c.jsonl"), price_per_1k_prompt=0.01,
                            price_per_1k_completion=0.03)
    for q in ("a", "b", "a"):
        model.chat([{"role": "user", "content": q}])
    assert inner.calls == 2 and model.usage.cache_hits == 1
    assert model.usage.cost == pytest.approx(2 * (0.01 + 0.015))
    again = CachedChatModel(CountingModel(), RequestCache(tmp_path / "c.jsonl"))
    r = again.chat([{"role": "user", "content": "b"}])
    assert r.cached and r.text == "echo b" and again.model.calls == 0 and again.usage.calls == 0


def test_torn_tail_is_repaired_and_only_that_request_repeats(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    model = CachedChatModel(CountingModel(), RequestCache(path))
    model.chat([{"role": "user", "content": "a"}])
    model.chat([{"role": "user", "content": "b"}])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])  # SIGKILL in the middle of the second line
    cache = RequestCache(path)
    assert len(cache) == 1 and path.read_bytes().endswith(b"\n")
    assert repair_jsonl_tail(path) == 0
    inner = CountingModel()
    again = CachedChatModel(inner, cache)
    again.chat([{"role": "user", "content": "a"}])
    again.chat([{"role": "user", "content": "b"}])
    assert inner.calls == 1


def test_transient_errors_are_retried_then_reraised(tmp_path: Path) -> None:
    inner = CountingModel(fail_first=2)
    model = CachedChatModel(inner, RequestCache(tmp_path / "c.jsonl"), max_attempts=3, retry_wait=wait_none())
    assert model.chat([{"role": "user", "content": "x"}]).text == "echo x"
    assert model.usage.retries == 2 and model.usage.calls == 1
    always = CachedChatModel(CountingModel(fail_first=99), RequestCache(tmp_path / "d.jsonl"), max_attempts=2,
                             retry_wait=wait_none())
    with pytest.raises(TimeoutError):
        always.chat([{"role": "user", "content": "x"}])
    assert always.model.calls == 2 and len(always.cache) == 0
    broken = CachedChatModel(CountingModel(), RequestCache(tmp_path / "e.jsonl"), retry_wait=wait_none())
    broken.model.chat = lambda *a, **k: (_ for _ in ()).throw(ValueError("not transient"))
    with pytest.raises(ValueError):
        broken.chat([{"role": "user", "content": "x"}])
