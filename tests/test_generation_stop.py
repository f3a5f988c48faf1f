"""Decoding that stops: JSON answers end when their first object closes (during generation), budgets fit gold."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from labkit.agent import MAX_NEW_TOKENS, decoding_for
from labkit.jsonscan import first_object_end, scan_object
from labkit.llm.base import cut_until, until_end
from labkit.types import ChatResult
from train_helpers import GEMMA_DIR

needs_gemma = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")
TASK = '{"task_name": "查 {北京} 天气", "command": {"name": "get_weather_info", "args": {"location": "Beijing"}}}'


def test_scanner_follows_strings_escapes_and_nesting():
    text = 'Sure! ' + TASK + ' and then more {"x": 1}'
    assert text[first_object_end(text) - 1] == "}" and json.loads(text[6:first_object_end(text)])
    assert first_object_end('{"a": "}\\"}", "b": [1, {"c": "]"}]}') == len('{"a": "}\\"}", "b": [1, {"c": "]"}]}')
    assert first_object_end('{"a": {"b": 1}') is None and first_object_end("no json") is None


def test_repeated_key_is_found_and_the_cut_keeps_the_first_values():
    looping = '{"command": {"name": "unit_convert", "args": {"from_unit": "THB", "to_unit": "CNY", "from_unit": "T'
    scan = scan_object(looping)
    assert scan.repeated_key == "from_unit" and not scan.complete
    cut = cut_until(looping, "json_object")
    assert cut.endswith('"to_unit": "CNY", ') and "THB" in cut
    # the same key in two different objects is not a repeat
    assert scan_object('{"name": "a", "args": {"name": "b"}}').repeated_key is None
    assert until_end('{"a": 1', "json_object") is None and until_end("x", None) is None
    with pytest.raises(ValueError, match="unknown completion rule"):
        until_end("{}", "yaml")


class Force(LogitsProcessor):
    """Make the model write ``target`` token by token (then keep repeating its last token)."""

    def __init__(self, target: list[int], prompt_len: int):
        self.target, self.prompt_len = target, prompt_len

    def __call__(self, input_ids, scores):
        i = min(input_ids.shape[1] - self.prompt_len, len(self.target) - 1)
        out = torch.full_like(scores, -1e9)
        out[:, self.target[i]] = 0
        return out


@needs_gemma
def test_local_model_stops_generating_when_the_object_closes(monkeypatch):
    from labkit.llm import LocalHFModel

    model = LocalHFModel("tiny")
    answer = TASK + '\n{"task_name": "again", "command": {"name": "x"'  # a model that would run on
    target = model.tokenizer(answer, add_special_tokens=False)["input_ids"]
    generate = model.model.generate

    def forced(**kw):
        kw["logits_processor"] = LogitsProcessorList([Force(target, kw["input_ids"].shape[1])])
        return generate(**kw)

    monkeypatch.setattr(model.model, "generate", forced)
    msgs = [{"role": "user", "content": "plan"}]
    free = model.chat(msgs, max_new_tokens=len(target))
    assert free.text.startswith(TASK) and free.completion_tokens == len(target)
    done = model.chat(msgs, max_new_tokens=len(target), until="json_object")
    assert done.text == TASK
    n_object = len(model.tokenizer(TASK, add_special_tokens=False)["input_ids"])
    assert done.completion_tokens <= n_object + 1 < len(target)  # stopped while generating, not cut afterwards


@needs_gemma
def test_budgets_fit_the_longest_gold_answer_of_each_format():
    from labkit.jsonl import read_jsonl
    from labkit.llm.local import load_tokenizer
    from labkit.llm.sandbox import FINISH_THOUGHT
    from labkit.parsing import render_gold
    from labkit.paths import data_dir
    from labkit.types import ToolCall

    tok = load_tokenizer()
    n = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    bank = read_jsonl(data_dir() / "queries" / "agent_queries.jsonl")
    longest = {"conclusion": max(n(q["reference_answer"]) for q in bank)}
    for fmt in ("task_json", "autogpt", "react", "toolllama", "modelscope"):
        lens = [n(render_gold(ToolCall(c["name"], c.get("args", {})), fmt, t))
                for q in bank for c, t in zip(q["gold_calls"], q["thoughts"])]
        for q in bank:
            thought = FINISH_THOUGHT[q.get("lang", "zh")]
            if fmt in ("task_json", "autogpt"):
                lens.append(n(render_gold(ToolCall("task_complete", {"reason": q["reference_answer"]}), fmt, thought)))
            else:
                lens.append(n(render_gold(q["reference_answer"], fmt, thought)))
        longest[fmt] = max(lens)
    for fmt, m in longest.items():
        assert MAX_NEW_TOKENS[fmt] >= m + 1, (fmt, m)  # + the end-of-turn token
        assert MAX_NEW_TOKENS[fmt] <= 2 * m, (fmt, m)  # a budget, not "as much as possible"


def test_benchmark_generation_decodes_each_template_in_its_format(tmp_path):
    from labkit.evaluate.runner import generate_predictions

    class Recorder:
        name = "recorder"

        def __init__(self):
            self.calls = []

        def chat_batch(self, batch, **kw):
            self.calls.append((len(batch), kw))
            return [ChatResult("x", self.name) for _ in batch]

    record = {"id": "1", "query": "q", "type": "plantooluse", "golden_result_list": [],
              "prompt_input": {"kagent_planning_zh": "p1", "react": "p2"},
              "output_formats": {"kagent_planning_zh": "task_json", "react": "react"}}
    model = Recorder()
    generate_predictions(model, [record], tmp_path / "cache.jsonl")
    got = {(kw["until"], tuple(kw["stop"] or ()), kw["max_new_tokens"]) for _, kw in model.calls}
    assert got == {("json_object", (), MAX_NEW_TOKENS["task_json"]), (None, ("Observation:",), MAX_NEW_TOKENS["react"])}
    assert decoding_for("react", 7).max_new_tokens == 7
