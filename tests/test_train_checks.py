"""Notebook 05's before/after comparison decodes as the template's format asks (issue 21: it cut answers at 48
tokens while the format's own budget is above the longest gold answer)."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.agent import decoding_for
from labkit.train import checks
from labkit.types import ChatResult


class Recorder:
    calls: list[dict[str, Any]] = []

    def __init__(self, path: str, device: str | None = None):
        self.path = path

    def chat_batch(self, batch: list, **kw: Any) -> list[ChatResult]:
        Recorder.calls.append(kw)
        return [ChatResult("x", self.path) for _ in batch]


def test_compare_generations_uses_the_format_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("labkit.llm.LocalHFModel", Recorder)
    Recorder.calls.clear()
    table = checks.compare_generations("base", "tuned", ["北京天气？"], template="kagent_planning_zh")
    want = decoding_for("task_json")
    assert len(table) == 1 and len(Recorder.calls) == 2
    assert all(c["max_new_tokens"] == want.max_new_tokens > 48 and c["until"] == want.until for c in Recorder.calls)
    checks.compare_generations("base", "tuned", ["q"], template="kagent_planning_zh", max_new_tokens=8)
    assert Recorder.calls[-1]["max_new_tokens"] == 8
