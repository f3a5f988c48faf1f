"""The record types (``TypedDict`` s) of records, data and train describe the dicts the code really builds: every
key a function writes is declared, every required key is written, and where the type lists a file's key order the
dict has that order. A record that gains, loses or renames a key without its type fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from record_shapes import has_shape

from labkit.agent.trace import Trace
from labkit.data.anonymize import PIIError, PIIReport, Scores, SpanRecord, Span, evaluate_pii
from labkit.data.balance import BalanceInfo, StepBalance, balance_steps
from labkit.data.convert import (AgentInstructRecord, AgentInstructTurn, KAgentInstructRecord, KAgentInstructStep,
                                 ShareGPTRecord, ToolBenchRecord, Turn, from_kagentinstruct, to_format)
from labkit.data.dedup import CrossDuplicates, Duplicate, DuplicatePair, cross_duplicates, deduplicate
from labkit.data.filters import Verdict, VerdictRecord
from labkit.data.mix import MixInfo, mix
from labkit.data.split import FormatCheck, LeakageReport, LeakPair, held_out_format_check, leakage_report
from labkit.data.stats import DataSummary, FitsMaxLen, PromptTokens, TokenSummary, summarize
from labkit.records import GeneralItem, Sample, SampleMessage, SampleMeta, TraceStep, parsed_to_dict
from labkit.train.collate import TrainSample, load_samples
from labkit.train.guard import BaseIdentity, base_identity
from labkit.train.packing import PackedItem, PackedRows, PackStatsRecord, sample_unit
from labkit.types import (ParsedAction, ParseError, ParseErrorDict, ParsedStepDict, ToolCall, ToolCallDict, TraceDict,
                          TraceStepDict)


def _samples() -> list[Sample]:
    def sample(i: int, step: int, action: str, query: str = "q1") -> Sample:
        return {"id": f"s{i}", "source": "agent", "query_id": query, "template": "react", "step": step,
                "action": action, "tools": [{"name": "calculator"}],
                "messages": [{"role": "system", "content": "sys", "loss": False},
                             {"role": "user", "content": f"prompt {i}", "loss": False},
                             {"role": "assistant", "content": f"answer {i}", "loss": True}]}
    return [sample(0, 0, "call"), sample(1, 1, "call"), sample(2, 1, "finish"), sample(3, 1, "finish", "q2")]


def test_trace_parsed_and_call_records() -> None:
    ok = parsed_to_dict(ParsedAction("think", call=ToolCall("calculator", {"expression": "1+1"})))
    bad = parsed_to_dict(ParseError("no_action", "no action found", raw="x"))
    has_shape(ok, ParsedStepDict)
    has_shape(bad, ParseErrorDict)
    has_shape(ok["call"], ToolCallDict)
    trace = Trace("q", "react", "m", [TraceStep("p", "o", ok, observation="2", tool_ok=True),
                                      TraceStep("p2", "o2", bad, kind="conclusion")], stopped="parse_error")
    saved = json.loads(json.dumps(trace.to_dict()))
    has_shape(saved, TraceDict)
    for step in saved["steps"]:
        has_shape(step, TraceStepDict)
    assert trace.error is not None
    has_shape(trace.error, ParseErrorDict)


def test_mix_and_balance_reports_in_stats_json_order() -> None:
    general: list[GeneralItem] = [{"id": "g1", "instruction": "hi", "output": "hello", "lang": "en"}]
    mixed, info = mix(_samples(), general, ratio=2.0)
    has_shape(info, MixInfo, ordered=True)
    for s in mixed:
        has_shape(s, Sample)
        for m in s["messages"]:
            has_shape(m, SampleMessage)
    for ratio in (None, 2.0):
        out, binfo = balance_steps(_samples(), ratio)
        has_shape(binfo, BalanceInfo, ordered=True)
        for st in binfo["by_step"].values():
            has_shape(st, StepBalance, ordered=True)
        for s in out:
            has_shape(s.get("meta", {}), SampleMeta)
    assert binfo["added"] == 2 and len(out) == 6


def test_split_dedup_and_filter_reports() -> None:
    queries = [{"id": "a", "query": "weather in Paris tomorrow", "cluster": "w", "gold_calls": []},
               {"id": "b", "query": "weather in Paris tomorrow!", "cluster": "w", "gold_calls": []},
               {"id": "c", "query": "convert 3 USD to EUR please", "cluster": "c", "gold_calls": []}]
    report = leakage_report(queries[:1], queries[1:], train_templates=["react"], test_templates=["react"])
    has_shape(report, LeakageReport, ordered=True)
    assert report["pairs"] and not report["ok"]
    for pair in report["pairs"]:
        has_shape(pair, LeakPair)
    has_shape(held_out_format_check(_samples(), ["declared:yaml"]), FormatCheck, ordered=True)
    cross = cross_duplicates([("a", "the same words here")], [("b", "the same words here"), ("c", "the same words here.")])
    has_shape(cross, CrossDuplicates)
    for pair in cross["exact"] + cross["near"]:
        has_shape(pair, DuplicatePair)
    dd = deduplicate(queries, text=lambda q: q["query"], key=lambda q: q["id"])
    assert dd.removed
    for dup in dd.removed:
        has_shape(dup, Duplicate, ordered=True)
    has_shape(Verdict("j", [{"code": "unparseable", "step": 0, "detail": "x"}]).to_dict(), VerdictRecord, ordered=True)


def test_pii_and_summary_reports() -> None:
    report = evaluate_pii()
    has_shape(report, PIIReport, ordered=True)
    for scores in report["per_type"].values():
        has_shape(scores, Scores, ordered=True)
    for err in report["errors"]:
        has_shape(err, PIIError, ordered=True)
    has_shape(Span(0, 1, "NAME").to_dict(), SpanRecord, ordered=True)
    traces = pd.DataFrame([{"calls": ["calculator"], "tool_steps": 1}])
    samples = pd.DataFrame([{"template": "react", "source": "agent", "prompt_tokens": 5, "total_tokens": 9}])
    for max_len in (None, 8):
        summary = summarize(traces, samples, max_len=max_len)
        has_shape(summary, DataSummary)
        has_shape(summary["tokens"], TokenSummary, ordered=True)
        has_shape(summary["prompt_tokens"], PromptTokens, ordered=True)
    assert list(summary)[0] == "fits_max_len"
    has_shape(summary["fits_max_len"], FitsMaxLen, ordered=True)


def test_format_records() -> None:
    kinds = {"agentinstruct": AgentInstructRecord, "toolbench": ToolBenchRecord, "sharegpt_fc": ShareGPTRecord,
             "kagentinstruct": KAgentInstructRecord}
    for fmt, td in kinds.items():
        samples = _samples()
        if fmt in ("agentinstruct", "kagentinstruct"):  # no system turn there
            samples = [{**s, "messages": s["messages"][1:]} for s in samples]
        for rec in to_format(samples, fmt):
            has_shape(rec, td)
            for turn in rec.get("conversations", []):
                has_shape(turn, AgentInstructTurn if fmt == "agentinstruct" else Turn)
            for step in rec.get("llm_prompt_response", []):
                has_shape(step, KAgentInstructStep)
            if fmt == "kagentinstruct":
                for s in from_kagentinstruct([rec]):
                    has_shape(s["meta"], SampleMeta)


def test_train_records(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in _samples()), encoding="utf-8")
    for s in load_samples(path):
        has_shape(s, TrainSample, ordered=True)
    unit = sample_unit({"input_ids": [2, 5, 6], "labels": [-100, 5, 6]})
    rows = PackedRows([unit, unit], budget=8)
    has_shape(rows[0], PackedItem)
    has_shape(rows.epoch_stats[0].to_dict(), PackStatsRecord, ordered=True)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 8, "vocab_size": 16}), encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"weights")
    has_shape(base_identity(model), BaseIdentity, ordered=True)
