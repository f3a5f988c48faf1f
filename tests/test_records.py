"""Typed records with one validator each: queries, samples, benchmark records, trace steps; the filters read the
trace (parsed action + tool error code) instead of re-parsing and re-running tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.errors import DataFileError
from labkit.records import TraceStep, read_queries, trace_steps, validate_sample

from test_data_label import CONCLUSIONS, data_dir  # noqa: F401  (fixture)


@pytest.fixture()
def labelled(data_dir: Path, tmp_path: Path) -> tuple[list[dict], dict, object]:  # noqa: F811
    from labkit.data.label import label_jobs, load_labelled, plan_jobs
    from labkit.data.queries import load_queries
    from labkit.tools import default_registry

    queries = load_queries()
    jobs = plan_jobs(queries, ["kagent_planning_zh", "react", "toolllama", "autogpt"],
                     conclusion_templates=CONCLUSIONS)
    label_jobs(jobs, "sandbox:noise=0.6,seed=3", tmp_path / "l", workers=2, progress=False)
    return sorted(load_labelled(tmp_path / "l"), key=lambda r: r["job_id"]), {q["id"]: q for q in queries}, \
        default_registry()


def test_filters_read_the_trace_without_reparsing_or_rerunning_tools(labelled, monkeypatch) -> None:
    from labkit.data import filters
    from labkit.tools import ToolRegistry

    records, queries, reg = labelled
    before = [filters.check_record(r, queries[r["query_id"]], reg).to_dict() for r in records]
    codes = {c for v in before for c in (r["code"] for r in v["reasons"])}
    assert {"args_schema_invalid", "unparseable", "unknown_tool"} & codes, codes
    assert any(s.get("tool_error") == "invalid_args" for r in records for s in r["trace"]["steps"])

    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("the filters re-parsed an output or re-ran a tool")

    from labkit.formats import OutputFormat

    monkeypatch.setattr(OutputFormat, "parse", forbidden)  # every format (built-in or declared) parses through it
    monkeypatch.setattr(ToolRegistry, "call", forbidden)
    after = [filters.check_record(r, queries[r["query_id"]], reg).to_dict() for r in records]
    assert after == before


def test_an_edited_step_is_read_again(labelled) -> None:
    from labkit.data.filters import check_record
    from labkit.data.review import apply_edit

    records, queries, reg = labelled
    rec = next(r for r in records if check_record(r, queries[r["query_id"]], reg).accepted)
    edited = apply_edit(rec, 0, "%%% not an action")
    verdict = check_record(edited, queries[rec["query_id"]], reg)
    assert verdict.reasons[0]["code"] == "unparseable" and verdict.reasons[0]["step"] == 0


def test_trace_steps_are_validated_with_file_and_field() -> None:
    good = {"prompt": "p", "output": "o", "parsed": {"ok": True, "thought": "t", "call": {"name": "x", "args": {}},
                                                     "final_answer": None, "give_up": False, "repaired": []},
            "observation": "obs", "tool_ok": False, "tool_error": "invalid_args", "extra": 1}
    step = TraceStep.from_dict(good)
    assert step.tool_error == "invalid_args" and step.action.call.name == "x" and step.ok
    with pytest.raises(DataFileError, match=r"x.jsonl:3 \[field 'steps\[1\].output'\]"):
        trace_steps({"steps": [good, {**good, "output": 5}]}, path="x.jsonl", line=3)
    with pytest.raises(DataFileError, match=r"steps\[0\].parsed.call"):
        trace_steps({"steps": [{**good, "parsed": {"ok": True, "call": ["x"]}}]})


def test_held_out_queries_are_validated_where_evaluation_reads_them(tmp_path: Path) -> None:
    from labkit.evaluate.benchmark import read_split

    (tmp_path / "stats.json").write_text(json.dumps({"train_templates": ["react"], "test_templates": []}))
    bad = {"id": "q1", "query": "北京天气", "lang": "zh", "gold_calls": [{"name": "x", "args": {}}], "thoughts": [],
           "reference_answer": "晴", "cluster": "weather"}
    (tmp_path / "test_queries.jsonl").write_text(json.dumps(bad, ensure_ascii=False) + "\n")
    with pytest.raises(DataFileError, match=r"test_queries.jsonl:1 \[field 'thoughts'\]"):
        read_split(tmp_path)
    (tmp_path / "test_queries.jsonl").write_text("")
    assert read_split(tmp_path) == ([], ["react"], [])
    assert read_queries(tmp_path / "test_queries.jsonl", allow_empty=True) == []


def test_one_sample_validator_for_export_and_training(tmp_path: Path) -> None:
    from labkit.data.export import read_training_set
    from labkit.train.collate import load_samples

    sample = {"id": "s", "source": "agent", "query_id": "q", "template": "react", "step": 0,
              "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 7}]}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(sample) + "\n")
    for reader in (read_training_set, load_samples, lambda p: validate_sample(sample, p, 1)):
        with pytest.raises(DataFileError, match=r"t.jsonl:1 \[field 'messages\[1\].content'\]: content must be"):
            reader(path)


# The labelled record's layout on disk (labelled.jsonl) as labkit has always written it: the typed record must not
# change a byte of it.
LABELLED_KEYS = ["job_id", "plan_job_id", "query_id", "query", "lang", "cluster", "template", "conclusion_template",
                 "tools", "teacher", "teacher_id", "settings", "trace", "teacher_meta"]
SAMPLE_KEYS = ["id", "source", "query_id", "template", "step", "action", "query", "tool_names", "meta", "messages"]


def test_typed_records_serialize_to_the_same_jsonl(labelled, tmp_path: Path) -> None:
    from labkit.data.export import read_training_set, write_training_set
    from labkit.data.filters import check_record
    from labkit.data.label import labelled_store
    from labkit.data.samples import step_samples
    from labkit.jsonl import dumps_line
    from labkit.records import FilterReason, LabelledRecord, Sample

    records, queries, reg = labelled
    for r in records:
        assert list(r) == LABELLED_KEYS
        assert LabelledRecord.__required_keys__ <= set(r) <= set(LabelledRecord.__annotations__)
    store = labelled_store(tmp_path / "again")
    store.put_many(records)
    assert (tmp_path / "again" / "labelled.jsonl").read_text(encoding="utf-8") == "".join(map(dumps_line, records))
    assert sorted(labelled_store(tmp_path / "again").values(), key=lambda r: r["job_id"]) == records

    reasons = [x for r in records for x in check_record(r, queries[r["query_id"]], reg).reasons]
    assert reasons and all(list(x) == list(FilterReason.__annotations__) for x in reasons)

    samples = [s for r in records for s in step_samples(r)]
    assert all(list(s) == SAMPLE_KEYS and set(s) <= set(Sample.__annotations__) for s in samples)
    write_training_set(samples, tmp_path / "train.jsonl")
    assert read_training_set(tmp_path / "train.jsonl") == samples
