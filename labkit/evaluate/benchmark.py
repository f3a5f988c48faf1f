"""Build a KAgentBench-layout benchmark from the held-out test queries, and load any KAgentBench-layout file.

Each record is one query in one situation, with a rendered prompt for several templates (``prompt_input``):

* ``plantooluse`` — the next step at step 0 and at one mid-trajectory step (memory = the gold completed tasks with
  the sandbox tools' real results); golden = that step's gold thought + call.
* ``reflextion`` — memory ends with a *failed* step: the gold tool called without its arguments (under a vague task
  name), with the tool's real error message as result (``memory_last_task`` = that call); golden = the same step
  done right, so a model that just repeats the failed call gets no credit.
* ``conclusion`` — conclusion-kind templates (Template-2 family) with all gold completed tasks; golden = the query's
  reference answer (no paraphrases: we had no honest source for them).
* ``profile`` — a persona card (name, role, the sandbox tools, style rules) plus the query as the user's message,
  ``prompt_input = {"prompt": ...}``; golden = in-persona answers built from the gold annotations (a self-introduction
  that names the tools it will use for the query and why; one variant without the introduction).

Queries with no gold tool call (answered directly) are left out: every record type above needs a tool step.

Our extra fields (the public file lacks them; the scorer treats them as optional): ``template_tags`` (template ->
"seen" | "unseen" | "held-out format", from the data stage's template groups), ``output_formats``
(template -> labkit.parsing format), ``lang``, ``step``.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypedDict

from labkit.errors import DataFileError
from labkit.evaluate.kagentbench import Prediction
from labkit.evaluate.scorer import output_format_of
from labkit.formats import OutputFormat, get_format
from labkit.jsonl import read_text, write_jsonl
from labkit.records import (RECORD_TYPES, BenchmarkRecord, GoldenItem, Query, load_benchmark,  # noqa: F401
                             read_queries)  # (load_benchmark: re-exported)
from labkit.types import CompletedTask, ToolCall

PROFILE_NAME = {"zh": "小析", "en": "Lexi"}
TEMPLATE_GROUPS = ("seen", "unseen", "held-out format")  # the template tags a benchmark record can carry


class TypeCounts(TypedDict):
    records: int
    instances: int               # prompts: one per template of a record


class BenchmarkStats(TypedDict):
    """What :func:`benchmark_stats` counts (notebook 06 shows it)."""

    by_type: dict[str, TypeCounts]     # record type -> counts
    total_instances: int
    template_tags: dict[str, int]      # template tag (seen, unseen, ...) -> prompts with it


def benchmark_stats(records: Sequence[BenchmarkRecord]) -> BenchmarkStats:
    """Counts like the KAgentBench card: records and prompts (instances) per type, template tags seen/unseen."""
    by_type: dict[str, TypeCounts] = {}
    tags: Counter[str] = Counter()
    for r in records:
        row = by_type.setdefault(str(r["type"]), {"records": 0, "instances": 0})
        row["records"] += 1
        row["instances"] += len(r.get("prompt_input") or {})
        tags.update((r.get("template_tags") or {}).values())
    return {"by_type": by_type, "total_instances": sum(v["instances"] for v in by_type.values()),
            "template_tags": dict(tags)}


def _funcs(tools: Iterable[Any]) -> list[dict[str, Any]]:
    return [t.openai_schema()["function"] for t in tools]


def _completed(query: Query, upto: int, registry: Any) -> list[CompletedTask]:
    tasks = []
    for call, thought in list(zip(query["gold_calls"], query["thoughts"]))[:upto]:
        tc = ToolCall(call["name"], dict(call.get("args") or {}))
        tasks.append(CompletedTask(thought, tc, registry.call(tc).text))
    return tasks


def _memory_text(tasks: Sequence[CompletedTask]) -> str:
    return json.dumps([dict(t.to_dict(), task_id=i + 1) for i, t in enumerate(tasks)], ensure_ascii=False, indent=4)


class _Chooser:
    """Picks templates per record: rotates so every seen and unseen template is used across the benchmark."""

    def __init__(self, seen: Sequence[Any], unseen: Sequence[Any], n_seen: int, n_unseen: int):
        self.seen, self.unseen, self.n_seen, self.n_unseen, self.i = list(seen), list(unseen), n_seen, n_unseen, 0

    def pick(self) -> list[tuple[Any, str]]:
        out = [(self.seen[(self.i * self.n_seen + k) % len(self.seen)], "seen")
               for k in range(min(self.n_seen, len(self.seen)))]
        out += [(self.unseen[(self.i * self.n_unseen + k) % len(self.unseen)], "unseen")
                for k in range(min(self.n_unseen, len(self.unseen)))]
        self.i += 1
        return list({t.name: (t, tag) for t, tag in out}.values())


def offered(query: Query, registry: Any, output_format: str | OutputFormat) -> Any:
    """The tools a prompt for ``query`` offers: its gold tools + seeded distractors (:func:`labkit.tools.offer.
    offer_tools`, the rule the training data uses), + ``task_complete`` for formats that finish with that call.
    ``output_format``: the template's format object (``template.format``), or a format name."""
    from labkit.tools.offer import offer_tools

    names = offer_tools([c["name"] for c in query.get("gold_calls") or ()], str(query["id"]), registry,
                        finish=get_format(output_format).finishes_with_call)
    return registry.subset(names)


def _record(query: Query, typ: str, suffix: str, chosen: list[tuple[Any, str]], registry: Any,
            memory: Sequence[CompletedTask], golden: list[GoldenItem], **extra: Any) -> BenchmarkRecord:
    tools = {t.name: offered(query, registry, t.format) for t, _ in chosen}
    every = registry.subset(list(dict.fromkeys(n for ts in tools.values() for n in ts.names())))
    return {
        "id": f"{query['id']}:{suffix}", "query": query["query"], "type": typ, "golden_result_list": golden,
        "funcs": _funcs(every),
        "prompt_input": {t.name: t.render(goal=query["query"], tools=tools[t.name], memory=list(memory))
                         for t, _ in chosen},
        "memory": _memory_text(memory) if memory else "", "memory_type": "task" if memory else "",
        "memory_last_task": {}, "template_tags": {t.name: tag for t, tag in chosen},
        "output_formats": {t.name: t.output_format for t, _ in chosen}, "lang": query.get("lang", "zh"), **extra,
    }


def _gold_step(query: Query, i: int) -> GoldenItem:
    call = query["gold_calls"][i]
    return {"thought": query["thoughts"][i], "tool_name": call["name"], "tool_args": dict(call.get("args") or {})}


def profile_record(query: Query, tools: Any) -> BenchmarkRecord:
    """A persona card + the query as the user's message; golden answers from the gold tools and thoughts."""
    zh = query.get("lang", "zh") == "zh"
    name = PROFILE_NAME["zh" if zh else "en"]
    tool_lines = "\n".join(f"- {t.name}: {t.description}" for t in tools)
    pairs = [(c["name"], t) for c, t in zip(query["gold_calls"], query["thoughts"]) if c["name"] != "task_complete"]
    used = list(dict.fromkeys(name for name, _ in pairs))
    steps = ("；" if zh else "; ").join(t for _, t in pairs)
    if zh:
        prompt = (f"你是{name}，一个严谨、友好的信息查询助手。你只使用下列工具获取信息，不编造事实；回答简洁，先说明身份，"
                  f"再说明你将如何解决用户的问题。\n可用工具：\n{tool_lines}\n\n用户：{query['query']}\n{name}：")
        plan = f"我会使用 {'、'.join(used)} 来完成：{steps}。" if used else "这个问题我可以直接回答。"
        golden = [f"你好，我是{name}，一个信息查询助手。{plan}", plan]
    else:
        prompt = (f"You are {name}, a careful, friendly information assistant. You only use the tools below and never "
                  f"make facts up; answer briefly: say who you are, then how you will solve the user's request.\n"
                  f"Tools:\n{tool_lines}\n\nUser: {query['query']}\n{name}:")
        plan = f"I will use {', '.join(used)} to: {steps}." if used else "I can answer this directly."
        golden = [f"Hi, I am {name}, an information assistant. {plan}", plan]
    return {"id": f"{query['id']}:profile", "query": query["query"], "type": "profile",
            "golden_result_list": [{"golden_result": g} for g in golden], "funcs": _funcs(tools),
            "prompt_input": {"prompt": prompt}, "memory": "", "memory_type": "", "memory_last_task": {},
            "template_tags": {"prompt": "unseen"}, "output_formats": {"prompt": "conclusion"},
            "lang": query.get("lang", "zh")}


def build_benchmark(queries: Sequence[Query], *, seen: Sequence[str], unseen: Sequence[str],
                    templates_per_record: tuple[int, int] = (1, 1), types: Sequence[str] = RECORD_TYPES,
                    registry: Any = None, seed: int = 0, out_path: str | Path | None = None) -> list[BenchmarkRecord]:
    """Records for every held-out query (see module doc); ``templates_per_record`` = (#seen, #unseen) per record."""
    from labkit.templates import load_template, load_templates
    from labkit.tools import default_registry

    registry = registry if registry is not None else default_registry()
    rng = random.Random(seed)
    seen_t, unseen_t = [load_template(n) for n in seen], [load_template(n) for n in unseen]
    plan_ch = _Chooser([t for t in seen_t if t.kind == "planning"], [t for t in unseen_t if t.kind == "planning"],
                       *templates_per_record)
    conc_seen = [t for t in seen_t if t.kind == "conclusion"]
    conc_unseen = [t for t in unseen_t if t.kind == "conclusion"]
    if not conc_seen and not conc_unseen:  # the split named planning templates only: tag the conclusion ones by name
        conc = [t for t in load_templates() if t.kind == "conclusion"]
        conc_seen, conc_unseen = [t for t in conc if t.name in seen], [t for t in conc if t.name not in seen]
    conc_ch = _Chooser(conc_seen, conc_unseen, *templates_per_record)
    records: list[BenchmarkRecord] = []
    for q in queries:
        pairs = [(c, t) for c, t in zip(q["gold_calls"], q["thoughts"]) if c["name"] != "task_complete"]
        q = {**q, "gold_calls": [c for c, _ in pairs], "thoughts": [t for _, t in pairs]}
        n = len(pairs)
        if n == 0:
            continue
        if "plantooluse" in types:
            steps = [0] + ([rng.randrange(1, n)] if n > 1 else [])
            for i in steps:
                records.append(_record(q, "plantooluse", f"plan{i}", plan_ch.pick(), registry,
                                       _completed(q, i, registry), [_gold_step(q, i)], step=i))
        if "reflextion" in types:
            records.extend(_reflection(q, plan_ch, registry, rng))
        if "conclusion" in types and (conc_ch.seen or conc_ch.unseen):
            golden: list[GoldenItem] = [{"golden_result": q["reference_answer"]}]
            records.append(_record(q, "conclusion", "conclusion", conc_ch.pick(), registry,
                                   _completed(q, n, registry), golden, step=n))
        if "profile" in types:
            records.append(profile_record(q, offered(q, registry, "conclusion")))
    if out_path is not None:
        write_jsonl(out_path, records)
    return records


def _reflection(q: Query, chooser: _Chooser, registry: Any, rng: random.Random) -> list[BenchmarkRecord]:
    candidates = [i for i, c in enumerate(q["gold_calls"])
                  if c["name"] in registry and registry.get(c["name"]).required and c.get("args")]
    if not candidates:
        return []
    i = rng.choice(candidates)
    failed = ToolCall(q["gold_calls"][i]["name"], {})
    obs = registry.call(failed)
    vague = (f"调用 {failed.name} 获取所需信息" if q.get("lang", "zh") == "zh"
             else f"call {failed.name} to get the needed information")
    memory = _completed(q, i, registry) + [CompletedTask(vague, failed, obs.text)]
    rec = _record(q, "reflextion", f"refl{i}", chooser.pick(), registry, memory, [_gold_step(q, i)], step=i)
    rec["memory_last_task"] = {"tool_name": failed.name, "tool_args": {}}
    return [rec]


def read_template_groups(data_dir: str | Path) -> dict[str, list[str]]:
    """The data stage's template groups (stats.json of ``data_dir``): ``seen`` (hand-written training templates),
    ``meta`` (Meta-Agent templates trained on), ``unseen`` (held-out templates, trained formats) and ``held-out
    format`` (templates in an output-format family no training template uses). A build without groups (before
    Meta-Agent Tuning) gives ``train_templates`` as seen and ``test_templates`` as unseen. The folders the build
    took templates from (``template_dirs``) are added to the template search path, so every name loads."""
    from labkit.templates import add_template_dir

    data_dir = Path(data_dir)
    stats_path = data_dir / "stats.json"
    if not stats_path.exists():
        raise DataFileError(stats_path, "file not found (run the data stage, notebook 03)")
    try:
        stats = json.loads(read_text(stats_path))
    except json.JSONDecodeError as exc:
        raise DataFileError(stats_path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
    for key in ("train_templates", "test_templates"):
        if not isinstance(stats.get(key), list):
            raise DataFileError(stats_path, "expected a list of template names", field=key)
    groups = stats.get("template_groups") or {"seen": stats["train_templates"], "unseen": stats["test_templates"]}
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise DataFileError(stats_path, "expected a mapping of group -> template names", field="template_groups")
    for folder in stats.get("template_dirs") or []:
        if not Path(folder).is_dir():
            raise DataFileError(stats_path, f"the template folder {folder} is gone (run notebook 04 again, or build "
                                "the data again)", field="template_dirs")
        add_template_dir(folder)
    return {g: list(groups.get(g) or []) for g in ("seen", "meta", *TEMPLATE_GROUPS[1:])}


def read_split(data_dir: str | Path) -> tuple[list[Query], list[str], list[str]]:
    """Held-out queries and the (seen, unseen) template names that the data stage wrote into ``data_dir``
    (:func:`read_template_groups`; the held-out formats are a group of their own, see :func:`format_benchmark`)."""
    groups = read_template_groups(data_dir)
    queries = read_queries(Path(data_dir) / "test_queries.jsonl", allow_empty=True)
    return queries, groups["seen"], groups["unseen"]


def format_benchmark(queries: Sequence[Query], templates: Sequence[str], *,
                     templates_per_record: int = 1, registry: Any = None, seed: int = 0,
                     out_path: str | Path | None = None) -> list[BenchmarkRecord]:
    """The held-out output formats' benchmark: the same plan/tool-use and reflection situations as
    :func:`build_benchmark` makes for these queries and seed, rendered with ``templates`` (``templates_per_record``
    of them per record, rotated) and tagged ``"held-out format"`` (no templates: no records). Scored on its own, so the main benchmark's
    Overall keeps its meaning; :func:`labkit.evaluate.report.group_table` puts the groups side by side."""
    records = build_benchmark(queries, seen=[], unseen=templates, templates_per_record=(0, templates_per_record),
                              types=("plantooluse", "reflextion"), registry=registry, seed=seed) if templates else []
    for r in records:
        r["template_tags"] = {t: TEMPLATE_GROUPS[2] for t in r["template_tags"]}
    if out_path is not None:
        write_jsonl(out_path, records)
    return records


def general_test_path(data_dir: str | Path) -> Path | None:
    """The held-out general samples the data stage wrote (first ``*general*.jsonl`` whose name says test/heldout)."""
    hits = sorted(p for p in Path(data_dir).glob("*general*.jsonl") if any(k in p.name for k in ("test", "held")))
    return hits[0] if hits else None


def golden_predictions(records: Sequence[BenchmarkRecord]) -> list[Prediction]:
    """Each record's first golden item written as every template's output (in that template's format).

    A sanity check for the scorer: these predictions must score 100 on every ability.
    """
    from labkit.parsing import render_gold

    preds: list[Prediction] = []
    for r in records:
        g = r["golden_result_list"][0]
        if r["type"] == "profile":
            predict: dict[str, str] | str = g["golden_result"]
        elif r["type"] == "conclusion":
            predict = {t: g["golden_result"] for t in r["prompt_input"]}
        else:
            call = ToolCall(g["tool_name"], dict(g.get("tool_args") or {}))
            predict = {t: render_gold(call, output_format_of(r, t), g["thought"]) for t in r["prompt_input"]}
        preds.append({**r, "model_predict": predict})
    return preds


def select_queries(queries: Sequence[Query], n: int) -> list[Query]:
    """Up to ``n`` tool-using queries taken round-robin over clusters (and languages), so a small benchmark still
    covers every intent instead of the first cluster in the file."""
    groups: dict[str, list[Query]] = {}
    for q in queries:
        if q.get("gold_calls"):
            groups.setdefault(f"{q.get('cluster', '')}|{q.get('lang', '')}", []).append(q)
    picked: list[Query] = []
    lists = [groups[k] for k in sorted(groups)]
    depth = 0
    while len(picked) < n and any(depth < len(g) for g in lists):
        picked.extend(dict(g[depth]) for g in lists if depth < len(g))  # type: ignore[misc]
        depth += 1
    return picked[:n]
