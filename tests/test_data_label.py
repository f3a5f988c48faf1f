"""Teacher labelling: SIGKILL mid-run resumes to exactly the uninterrupted sample set; re-runs make 0 calls;
bad input names file / line / sample and keeps finished work; filters reject a garbage teacher with reasons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit.errors import DataFileError, UnknownNameError
from labkit.types import ChatResult, Message

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = ["kagent_planning_zh", "react", "autogpt", "toolllama", "modelscope", "meta_terse_en"]
CONCLUSIONS = ["kagent_conclusion_zh", "kagent_conclusion_en"]
W = {"location": "Beijing", "start_date": "2025-03-15", "end_date": "2025-03-15", "is_current": "yes"}
FX = {"amount": 100, "from_currency": "USD", "to_currency": "CNY"}
BANK = [
    ("w1", "北京今天天气怎么样？", "zh", "weather", [("get_weather_info", W)], "北京现在小雨，气温5.2°C，湿度67%。"),
    ("w2", "What's the weather in Beijing right now?", "en", "weather", [("get_weather_info", W)],
     "Beijing has light rain, 5.2°C, humidity 67%."),
    ("c1", "15乘以240再除以100等于多少？", "zh", "calc", [("calculator", {"expression": "15*240/100"})], "结果是36。"),
    ("c2", "Compute 15*240/100 for me.", "en", "calc", [("calculator", {"expression": "15*240/100"})], "It is 36."),
    ("x1", "100美元能换多少人民币？", "zh", "fx", [("currency_convert", FX)], "100美元约合724.00元人民币。"),
    ("x2", "How many CNY is 100 USD?", "en", "fx", [("currency_convert", FX)], "100 USD = 724.00 CNY."),
    ("m1", "北京现在的气温乘以2是多少？", "zh", "multi",
     [("get_weather_info", W), ("calculator", {"expression": "5.2*2"})], "北京现在5.2°C，乘以2是10.4。"),
    ("m2", "Convert 100 USD to CNY and then divide by 4.", "en", "multi",
     [("currency_convert", FX), ("calculator", {"expression": "724/4"})], "100 USD is 724.00 CNY; divided by 4: 181."),
]


def write_bank(data: Path) -> None:
    """A tiny self-contained data dir: the repo's templates and world, our own small gold bank."""
    (data / "queries").mkdir(parents=True)
    for name in ("templates", "world"):
        (data / name).symlink_to(REPO / "data" / name)
    with (data / "queries" / "agent_queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, q, lang, cluster, calls, answer in BANK:
            fh.write(json.dumps({"id": qid, "query": q, "lang": lang, "cluster": cluster, "reference_answer": answer,
                                 "gold_calls": [{"name": n, "args": a} for n, a in calls],
                                 "thoughts": [f"{qid} step {i}" for i in range(len(calls))]}, ensure_ascii=False) + "\n")
    with (data / "queries" / "general.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(40):
            fh.write(json.dumps({"id": f"g{i}", "lang": "zh", "output": f"这是第{i}号回答，内容{i * 7}。",
                                 "instruction": f"第{i}题：请解释“{'春夏秋冬'[i % 4]}{'风花雪月'[i // 4 % 4]}”在诗中的意思（{i}）"},
                                ensure_ascii=False) + "\n")


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    write_bank(data)
    monkeypatch.setenv("LABKIT_DATA", str(data))
    return data


KILL_SCRIPT = """
import sys, time
from labkit.data.label import label_jobs, plan_jobs
from labkit.data.queries import load_queries
from labkit.llm import get_model, model_id

class Slow:  # the same teacher, slowed down: same identity, so its labels and cache entries are shared
    def __init__(self, inner):
        self.inner, self.name, self.identity = inner, inner.name, model_id(inner)
    def chat(self, messages, **kw):
        time.sleep(0.05)
        return self.inner.chat(messages, **kw)

jobs = plan_jobs(load_queries(), {templates}, conclusion_templates={conclusions})
label_jobs(jobs, Slow(get_model("sandbox:noise=0.3")), sys.argv[1], workers=2, progress=False)
"""


def _signature(out: Path) -> list[str]:
    from labkit.data.label import load_labelled

    recs = load_labelled(out)
    return sorted(json.dumps({"job_id": r["job_id"], "trace": r["trace"]}, ensure_ascii=False, sort_keys=True)
                  for r in recs)


def test_sigkill_mid_run_resumes_to_the_same_sample_set(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_labelled, plan_jobs
    from labkit.data.queries import load_queries

    jobs = plan_jobs(load_queries(), TEMPLATES, conclusion_templates=CONCLUSIONS)
    ref = tmp_path / "uninterrupted"
    label_jobs(jobs, "sandbox:noise=0.3", ref, workers=2, progress=False)
    assert len(load_labelled(ref)) == len(jobs) == 48

    killed = tmp_path / "killed"
    script = KILL_SCRIPT.format(templates=TEMPLATES, conclusions=CONCLUSIONS)
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)], cwd=REPO, env=dict(os.environ))
    labelled = killed / "labelled.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not labelled.exists() or labelled.read_text().count("\n") < 8):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done_before = labelled.read_text().count("\n")
    assert 8 <= done_before < len(jobs), "the kill must land mid-run"
    with labelled.open("a") as fh:  # as if the kill had landed in the middle of a write
        fh.write('{"job_id": "w1::react", "trace": {"st')

    report = label_jobs(jobs, "sandbox:noise=0.3", killed, workers=2, progress=False)
    assert report.skipped == done_before and report.new == len(jobs) - done_before
    ids = [r["job_id"] for r in load_labelled(killed)]
    assert len(ids) == len(set(ids)) == len(jobs)
    assert _signature(killed) == _signature(ref)

    again = label_jobs(jobs, "sandbox:noise=0.3", killed, workers=2, progress=False)
    assert again.usage.calls == 0 and again.new == 0
    (killed / "labelled.jsonl").unlink()  # even re-running every job is answered from the request cache
    rerun = label_jobs(jobs, "sandbox:noise=0.3", killed, workers=2, progress=False)
    assert rerun.usage.calls == 0 and rerun.usage.cache_hits > 0 and _signature(killed) == _signature(ref)


def test_bad_query_file_names_file_line_and_field(data_dir: Path) -> None:
    from labkit.data.queries import load_queries
    from labkit.tools import default_registry

    path = data_dir / "queries" / "bad.jsonl"
    good = (data_dir / "queries" / "agent_queries.jsonl").read_text().splitlines()[0]
    path.write_text(good + "\n{not json\n")
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: invalid JSON"):
        load_queries(path)
    rec = json.loads(good)
    rec["gold_calls"][0]["name"] = "teleport"
    path.write_text(good + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataFileError, match=r"bad.jsonl:2 \[field 'id'\]: duplicate id"):
        load_queries(path)
    rec["id"] = "new"
    path.write_text(good + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataFileError, match=r"bad.jsonl:2 \[field 'gold_calls\[0\].name'\]: unknown tool 'teleport'"):
        load_queries(path, tool_names=default_registry().names())
    del rec["cluster"]
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(DataFileError, match=r"bad.jsonl:1 \[field 'cluster'\]: missing field"):
        load_queries(path)


def test_unknown_template_fails_before_any_work(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import plan_jobs
    from labkit.data.queries import load_queries

    with pytest.raises(UnknownNameError, match="nonexistent_template"):
        plan_jobs(load_queries(), ["react", "nonexistent_template"])


class GarbageTeacher:
    """Returns garbage for queries mentioning weather and crashes on currency queries."""

    name = "garbage"

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        prompt = messages[-1]["content"]
        if any(q in prompt for q in ("100美元能换多少人民币", "How many CNY is 100 USD", "Convert 100 USD to CNY and")):
            raise RuntimeError("teacher exploded")
        return ChatResult("%%% lorem ipsum {{{", self.name)


def test_garbage_teacher_is_filtered_and_failures_are_kept(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.filters import check_record
    from labkit.data.label import label_jobs, load_failures, load_labelled, plan_jobs
    from labkit.data.queries import load_queries
    from labkit.tools import default_registry

    queries = load_queries()
    jobs = plan_jobs(queries, ["kagent_planning_zh", "react"], conclusion_templates=CONCLUSIONS)
    report = label_jobs(jobs, GarbageTeacher(), tmp_path / "g", workers=2, progress=False)
    failures = load_failures(tmp_path / "g")
    assert report.failed == len(failures) == 6 and report.new == 10
    assert {f["query_id"] for f in failures} == {"x1", "x2", "m2"}
    assert all(f["reason"] == "teacher exploded" and f["error_type"] == "RuntimeError" for f in failures)
    by_id, reg = {q["id"]: q for q in queries}, default_registry()
    for rec in load_labelled(tmp_path / "g"):
        v = check_record(rec, by_id[rec["query_id"]], reg)
        assert not v.accepted and v.reasons[0]["code"] == "unparseable" and v.reasons[0]["step"] == 0
        assert rec["job_id"] == v.job_id


def test_distractor_tools_are_seeded_and_exclude_gold(data_dir: Path) -> None:
    from labkit.data.label import plan_jobs
    from labkit.data.queries import load_queries

    queries = load_queries()
    a = plan_jobs(queries, ["kagent_planning_zh", "react"], seed=1)
    b = plan_jobs(queries, ["kagent_planning_zh", "react"], seed=1)
    assert [j.tools for j in a] == [j.tools for j in b]
    for j in a:
        gold = {c["name"] for c in j.query["gold_calls"]}
        extra = set(j.tools) - gold - {"task_complete"}
        assert gold <= set(j.tools) and 2 <= len(extra) <= 3
        assert ("task_complete" in j.tools) == (j.template == "kagent_planning_zh")
        assert (j.conclusion_template is None) == (j.template == "react")


def test_templates_per_query_rotates_templates_evenly(data_dir: Path) -> None:
    from collections import Counter

    from labkit.data.label import plan_jobs
    from labkit.data.queries import load_queries

    jobs = plan_jobs(load_queries(), TEMPLATES, conclusion_templates=CONCLUSIONS, templates_per_query=3)
    assert len(jobs) == 8 * 3 and len({j.job_id for j in jobs}) == 24
    per_template = Counter(j.template for j in jobs)
    assert set(per_template) == set(TEMPLATES) and max(per_template.values()) - min(per_template.values()) <= 1


class FlakyTeacher:
    """The emulator behind a link that drops about a quarter of the requests (seeded by prompt and attempt)."""

    def __init__(self, rate: float = 0.25):
        from labkit.llm import get_model

        from labkit.llm import model_id

        self.inner, self.rate, self.attempts = get_model("sandbox:noise=0.3"), rate, {}
        self.name, self.identity = self.inner.name, model_id(self.inner)  # the same teacher behind a bad link

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        import hashlib

        prompt = messages[-1]["content"]
        n = self.attempts[prompt] = self.attempts.get(prompt, 0) + 1
        if int(hashlib.sha256(f"{n}|{prompt}".encode()).hexdigest(), 16) % 1000 < self.rate * 1000:
            raise RuntimeError("connection dropped")
        return self.inner.chat(messages, **kw)


def test_failed_jobs_are_not_done_and_resume_retries_them(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_failures, load_labelled, plan_jobs
    from labkit.data.queries import load_queries

    jobs = plan_jobs(load_queries(), TEMPLATES, conclusion_templates=CONCLUSIONS)
    ref = tmp_path / "ref"
    label_jobs(jobs, "sandbox:noise=0.3", ref, workers=2, progress=False)
    out, teacher = tmp_path / "flaky", FlakyTeacher()
    first = label_jobs(jobs, teacher, out, workers=2, progress=False)
    assert first.failed > 5 and first.new == len(jobs) - first.failed
    rounds = [first]
    while rounds[-1].failed and len(rounds) < 12:
        rounds.append(label_jobs(jobs, teacher, out, workers=2, progress=False))
    assert rounds[1].skipped == first.new and rounds[1].new > 0, "resume must retry the failed jobs"
    assert rounds[-1].failed == 0 and len(load_failures(out)) == sum(r.failed for r in rounds)
    ids = [r["job_id"] for r in load_labelled(out)]
    assert len(ids) == len(set(ids)) == len(jobs)
    assert _signature(out) == _signature(ref)


class SlowTeacher:
    def __init__(self, delay: float):
        from labkit.llm import get_model

        self.inner, self.delay = get_model("sandbox"), delay
        self.name = self.inner.name

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        time.sleep(self.delay)
        return self.inner.chat(messages, **kw)


def test_job_and_run_deadlines(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_failures, load_labelled, plan_jobs
    from labkit.data.queries import load_queries

    jobs = plan_jobs(load_queries(), ["kagent_planning_zh"], conclusion_templates=CONCLUSIONS)
    report = label_jobs(jobs, SlowTeacher(0.03), tmp_path / "a", workers=2, progress=False, job_deadline_s=0.05)
    assert report.failed == len(jobs) and report.new == 0  # every plan job needs 3+ calls: each overran
    assert all("deadline" in f["reason"] and f["error_type"] == "JobDeadlineExceeded"
               for f in load_failures(tmp_path / "a"))
    run = label_jobs(jobs, SlowTeacher(0.03), tmp_path / "b", workers=1, progress=False, deadline_s=0.2)
    assert run.not_started > 0 and run.new + run.failed + run.not_started == len(jobs) and run.seconds < 1.0
    rest = label_jobs(jobs, SlowTeacher(0.0), tmp_path / "b", workers=2, progress=False)
    assert rest.skipped == run.new and len(load_labelled(tmp_path / "b")) == len(jobs)


def test_failure_reasons_never_hold_the_api_key(data_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.data.label import label_jobs, plan_jobs
    from labkit.data.queries import load_queries

    key = "sk-planted-in-a-teacher-error-123"
    monkeypatch.setenv("OPENAI_API_KEY", key)

    class Leaky:
        name = "leaky"

        def chat(self, messages: list[Message], **kw: object) -> ChatResult:
            raise RuntimeError(f"proxy said: bad header Authorization: Bearer {key}")

    jobs = plan_jobs(load_queries()[:2], ["react"])
    assert label_jobs(jobs, Leaky(), tmp_path / "k", progress=False).failed == 2
    text = (tmp_path / "k" / "failures.jsonl").read_text()
    assert key not in text and "Bearer ***" in text


def test_another_teacher_in_the_same_folder_makes_its_own_labels(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_labelled, plan_jobs
    from labkit.data.queries import load_queries

    jobs = plan_jobs(load_queries(), ["kagent_planning_zh", "react"], conclusion_templates=CONCLUSIONS)
    out = tmp_path / "shared"
    noisy = label_jobs(jobs, "sandbox:noise=0.9", out, workers=2, progress=False)
    clean = label_jobs(jobs, "sandbox:noise=0.0", out, workers=2, progress=False)  # same name, other teacher
    assert noisy.new == clean.new == len(jobs) and clean.skipped == 0 and clean.usage.calls > 0
    assert clean.usage.cache_hits == 0, "answers cached for another teacher must not be reused"
    mine = [r for r in load_labelled(out) if r["teacher_id"] == clean.teacher_id]
    assert len(mine) == len(jobs) and not any(m.get("noise") for r in mine for m in r["teacher_meta"])
    assert len({r["job_id"] for r in load_labelled(out)}) == 2 * len(jobs)
    assert label_jobs(jobs, "sandbox:noise=0.9", out, workers=2, progress=False).skipped == len(jobs)


class BrokenTeacher:
    name = "broken"

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        raise ConnectionError("teacher unreachable")


def test_when_every_call_fails_nothing_is_written_and_the_error_is_clear(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.pipeline import build_dataset
    from labkit.errors import LabkitError

    out = tmp_path / "d"
    with pytest.raises(LabkitError, match=r"no labelling job succeeded \(\d+ of \d+ failed; last error: "
                                          r"ConnectionError: teacher unreachable\).*failures.jsonl"):
        build_dataset("smoke", out, teacher=BrokenTeacher(), test_fraction=0.3, workers=2, progress=False)
    assert not (out / "train.jsonl").exists() and (out / "labelling" / "failures.jsonl").stat().st_size > 0
    build_dataset("smoke", out, teacher="sandbox", test_fraction=0.3, workers=2, progress=False)
    stats, train = json.loads((out / "stats.json").read_text()), (out / "train.jsonl").read_bytes()
    assert stats["teacher"] == "sandbox" and stats["teacher_id"].startswith("sandbox-teacher")
    with pytest.raises(LabkitError, match="no labelling job succeeded"):
        build_dataset("smoke", out, teacher=BrokenTeacher(), test_fraction=0.3, workers=2, progress=False)
    assert (out / "train.jsonl").read_bytes() == train and json.loads((out / "stats.json").read_text()) == stats


def test_job_deadline_cuts_a_teacher_call_to_a_silent_server(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_failures, plan_jobs
    from labkit.data.queries import load_queries
    from labkit.llm import OpenAIChat
    from test_llm_openai import Hostile

    srv = Hostile("silent")
    try:
        teacher = OpenAIChat(model="m", base_url=srv.url, api_key="sk-x", timeout=30, deadline=30)
        jobs = plan_jobs(load_queries()[:2], ["react"])
        start = time.monotonic()
        report = label_jobs(jobs, teacher, tmp_path / "s", workers=2, progress=False, job_deadline_s=1.0)
        assert time.monotonic() - start < 3.0  # not the client's 30 s
    finally:
        srv.close()
    assert report.failed == 2 and report.new == 0
    assert all(f["error_type"] == "JobDeadlineExceeded" and "job_deadline_s=1" in f["reason"]
               for f in load_failures(tmp_path / "s"))


def test_an_empty_teacher_reply_fails_the_job_is_never_cached_and_is_asked_again(data_dir: Path,
                                                                               tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from fake_teacher import TeacherServer

    from labkit.data.label import label_jobs, load_failures, load_labelled, plan_jobs
    from labkit.data.queries import load_queries
    from labkit.llm import OpenAIChat

    server = TeacherServer(fault_rate=1.0, faults=("blank",))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        teacher = OpenAIChat(base_url=server.url, api_key="sk-x", max_retries=1, backoff=0.01)
        jobs, out = plan_jobs(load_queries()[:3], ["react"]), tmp_path / "blank"
        first = label_jobs(jobs, teacher, out, workers=2, progress=False)
        assert first.failed == 3 and first.new == 0 and server.counts["blank"] == 6  # 1 try + 1 retry per job
        assert all("empty message content" in f["reason"] for f in load_failures(out))
        assert not (out / "teacher_cache.jsonl").exists() or not (out / "teacher_cache.jsonl").read_text().strip()
        server.fault_rate = 0.0  # the teacher is fixed: the same requests are made again and labelled
        fixed = label_jobs(jobs, teacher, out, workers=2, progress=False)
        assert fixed.new == 3 and fixed.usage.calls > 0 and fixed.usage.cache_hits == 0 and server.counts["ok"] > 0
        assert len(load_labelled(out)) == 3
    finally:
        server.shutdown()
        server.server_close()


class BlankTeacher:
    """A backend that is not an HTTP client (a local model, an emulator) answering with whitespace."""

    name = "blank"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        self.calls += 1
        return ChatResult(" \n", self.name)


def test_a_blank_local_teacher_labels_nothing_and_caches_nothing(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_failures, plan_jobs
    from labkit.data.queries import load_queries

    jobs, teacher = plan_jobs(load_queries()[:2], ["react"]), BlankTeacher()
    report = label_jobs(jobs, teacher, tmp_path / "b", workers=1, progress=False)
    assert report.failed == 2 and report.new == 0 and report.usage.empty == 2
    assert all(f["error_type"] == "EmptyReply" for f in load_failures(tmp_path / "b"))
    again = label_jobs(jobs, teacher, tmp_path / "b", workers=1, progress=False)
    assert again.usage.calls == 2 and again.usage.cache_hits == 0 and teacher.calls == 4


class AllGarbageTeacher:
    name = "all-garbage"

    def chat(self, messages: list[Message], **kw: object) -> ChatResult:
        return ChatResult("%%% lorem ipsum {{{", self.name)


def test_a_data_stage_that_accepts_nothing_raises_and_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.pipeline import build_dataset
    from labkit.errors import LabkitError

    out = tmp_path / "d"
    out.mkdir()
    (out / "train.jsonl").write_text('{"earlier": "output"}\n')
    with pytest.raises(LabkitError, match=r"accepted nothing: \d+ jobs labelled, 0 accepted .*'unparseable'.*"
                                          r"nothing was written"):
        build_dataset("smoke", out, teacher=AllGarbageTeacher(), test_fraction=0.3, workers=2, progress=False)
    assert (out / "train.jsonl").read_text() == '{"earlier": "output"}\n' and not (out / "stats.json").exists()
    assert (out / "labelling" / "labelled.jsonl").stat().st_size > 0  # the labels are kept for inspection


def test_labelling_settings_are_part_of_the_job_identity(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, load_labelled, plan_jobs, teacher_job_id
    from labkit.data.queries import load_queries

    jobs, out = plan_jobs(load_queries(), ["kagent_planning_zh"], conclusion_templates=CONCLUSIONS), tmp_path / "s"
    first = label_jobs(jobs, "sandbox:noise=0.3", out, workers=2, progress=False)
    assert first.job_ids == [teacher_job_id(j.job_id, first.teacher_id) for j in jobs]  # default ids unchanged
    short = label_jobs(jobs, "sandbox:noise=0.3", out, workers=2, progress=False, max_steps=1)
    assert short.skipped == 0 and short.new == len(jobs), "a changed max_steps must not reuse the old labels"
    assert not set(short.job_ids) & set(first.job_ids)
    by_id = {r["job_id"]: r for r in load_labelled(out)}
    assert all(len([s for s in by_id[i]["trace"]["steps"] if s.get("kind") != "conclusion"]) <= 1
               for i in short.job_ids)
    assert all(by_id[i]["settings"]["max_steps"] == 1 for i in short.job_ids)
    tokens = label_jobs(jobs, "sandbox:noise=0.3", out, workers=2, progress=False, max_new_tokens=64)
    assert tokens.new == len(jobs) and len(set(first.job_ids + short.job_ids + tokens.job_ids)) == 3 * len(jobs)
    for kw in ({}, {"max_steps": 1}, {"max_new_tokens": 64}):  # each setting finds its own labels again
        again = label_jobs(jobs, "sandbox:noise=0.3", out, workers=2, progress=False, **kw)
        assert again.skipped == len(jobs) and again.usage.calls == 0
    other_tools = plan_jobs(load_queries(), ["kagent_planning_zh"], conclusion_templates=CONCLUSIONS, seed=7)
    assert [j.tools for j in other_tools] != [j.tools for j in jobs]
    moved = label_jobs(other_tools, "sandbox:noise=0.3", out, workers=2, progress=False)
    changed = [i for i, j, k in zip(moved.job_ids, other_tools, jobs) if j.tools != k.tools]
    assert changed and all("~" in i for i in changed) and moved.new >= len(changed)


def test_labels_from_before_settings_were_recorded_stay_valid(data_dir: Path, tmp_path: Path) -> None:
    from labkit.data.label import label_jobs, plan_jobs
    from labkit.data.queries import load_queries

    jobs, out = plan_jobs(load_queries()[:3], ["react"]), tmp_path / "old"
    label_jobs(jobs, "sandbox", out, workers=1, progress=False)
    path = out / "labelled.jsonl"
    old = [{k: v for k, v in json.loads(line).items() if k != "settings"} for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in old))  # as an older labkit wrote it
    again = label_jobs(jobs, "sandbox", out, workers=1, progress=False)
    assert again.skipped == 3 and again.usage.calls == 0 and set(again.job_ids) == {r["job_id"] for r in old}
    assert label_jobs(jobs, "sandbox", out, workers=1, progress=False, max_steps=2).new == 3
