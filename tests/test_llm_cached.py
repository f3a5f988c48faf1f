"""The teacher request cache: exact-request keys, torn-tail repair, one retry layer, every request counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.llm.cached import CachedAnswer, CachedChatModel, RequestCache, request_key
from labkit.store import repair_torn_tail
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
    lines = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [list(x) for x in lines] == [list(CachedAnswer.__annotations__)] * 2  # the cache line's type is its layout


def test_torn_tail_is_repaired_and_only_that_request_repeats(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    model = CachedChatModel(CountingModel(), RequestCache(path))
    model.chat([{"role": "user", "content": "a"}])
    model.chat([{"role": "user", "content": "b"}])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])  # SIGKILL in the middle of the second line
    cache = RequestCache(path)
    assert len(cache) == 1
    inner = CountingModel()
    again = CachedChatModel(inner, cache)
    again.chat([{"role": "user", "content": "a"}])
    again.chat([{"role": "user", "content": "b"}])
    assert inner.calls == 1 and repair_torn_tail(path) == 0 and len(RequestCache(path)) == 2


def test_the_wrapper_does_not_retry_and_counts_failed_requests(tmp_path: Path) -> None:
    inner = CountingModel(fail_first=1)
    model = CachedChatModel(inner, RequestCache(tmp_path / "c.jsonl"))
    with pytest.raises(TimeoutError):
        model.chat([{"role": "user", "content": "x"}])
    assert inner.calls == 1 and model.usage.calls == 1 and model.usage.failures == 1 and len(model.cache) == 0
    assert model.chat([{"role": "user", "content": "x"}]).text == "echo x"
    assert inner.calls == 2 and model.usage.calls == 2 and model.usage.requests == 2 and model.usage.retries == 0


def test_openai_retries_happen_once_in_the_client_and_are_reported(tmp_path: Path) -> None:
    from test_llm_openai import Scripted, client, completion

    srv = Scripted([(500, {"error": {"message": "boom"}}, 0), (200, "not json", 0), (200, completion("ok"), 0)])
    try:
        model = CachedChatModel(client(srv.url, max_retries=4), RequestCache(tmp_path / "c.jsonl"))
        assert model.chat([{"role": "user", "content": "x"}]).text == "ok"
        assert len(srv.requests) == 3
        assert (model.usage.calls, model.usage.requests, model.usage.retries) == (1, 3, 2)
        srv.script = [(503, {"error": {"message": "down"}}, 0)]
        with pytest.raises(Exception, match="down"):
            model.chat([{"role": "user", "content": "y"}])
        assert len(srv.requests) == 3 + 5  # 1 + max_retries attempts, not multiplied by an outer retry layer
        assert (model.usage.calls, model.usage.failures, model.usage.requests) == (2, 1, 8)
    finally:
        srv.close()


class SurrogateModel(CountingModel):
    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        self.calls += 1
        return ChatResult(f"half an emoji \ud83d {messages[-1]['content']}", self.name, 3, 4)


def test_reply_with_a_lone_surrogate_is_cached_and_counted(tmp_path: Path) -> None:
    inner = SurrogateModel()
    model = CachedChatModel(inner, RequestCache(tmp_path / "c.jsonl"))
    for q in "abcdefghi":
        assert model.chat([{"role": "user", "content": q}]).text == f"half an emoji \ud83d {q}"
    assert inner.calls == model.usage.calls == 9 and model.usage.completion_tokens == 36
    again = CachedChatModel(SurrogateModel(), RequestCache(tmp_path / "c.jsonl"))
    assert again.chat([{"role": "user", "content": "e"}]).text == "half an emoji \ud83d e"
    assert again.usage.cache_hits == 1 and again.model.calls == 0


class BatchModel(CountingModel):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def chat_batch(self, batch: list[list[Message]], **kw: object) -> list[ChatResult]:
        self.batches.append(len(batch))
        return [self.chat(m) for m in batch]


def test_chat_batch_sends_only_the_misses_in_one_batch(tmp_path: Path) -> None:
    inner = BatchModel()
    model = CachedChatModel(inner, RequestCache(tmp_path / "c.jsonl"))
    model.chat([{"role": "user", "content": "b"}])
    out = model.chat_batch([[{"role": "user", "content": q}] for q in "abcb"], max_new_tokens=256)
    assert [r.text for r in out] == ["echo a", "echo b", "echo c", "echo b"] and [r.cached for r in out] == [
        False, True, False, True]
    assert inner.batches == [2] and model.usage.calls == 3 and model.usage.cache_hits == 2
    out = model.chat_batch([[{"role": "user", "content": q}] for q in "xyx"])  # a repeated miss is asked once
    assert [r.text for r in out] == ["echo x", "echo y", "echo x"] and inner.batches[-1] == 2


class BlankModel(CountingModel):
    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        self.calls += 1
        return ChatResult("" if self.calls == 1 else "  \n\t", self.name, 3, 0)


def test_an_empty_answer_is_returned_but_never_cached(tmp_path: Path) -> None:
    path, msg = tmp_path / "c.jsonl", [{"role": "user", "content": "x"}]
    inner = BlankModel()
    model = CachedChatModel(inner, RequestCache(path))
    assert model.chat(msg).text == "" and model.chat(msg).text == "  \n\t"
    assert inner.calls == 2 and model.usage.empty == 2 and model.usage.cache_hits == 0 and len(model.cache) == 0
    assert not RequestCache(path).put("k", ChatResult(" ", "m"))
    # a cache written before this rule holds an empty answer: it is a miss, and the real answer replaces it
    path.write_text(json.dumps({"key": model.key(msg), "text": "", "model": "counting", "prompt_tokens": 1,
                                "completion_tokens": 0, "meta": {}}) + "\n")
    fixed = CachedChatModel(CountingModel(), RequestCache(path))
    assert fixed.chat(msg).text == "echo x" and fixed.model.calls == 1
    again = CachedChatModel(CountingModel(), RequestCache(path))
    assert again.chat(msg).text == "echo x" and again.model.calls == 0 and again.usage.cache_hits == 1
