"""Converters between our training samples and public agent-data formats.

* ``kagentinstruct`` — KAgentInstruct: ``{id, query, source, functions (JSON strings), function_names,
  llm_prompt_response: [{instruction, input, output, llm_name, human_edited}], extra_infos}``; one entry per
  query and template, one step per prompt -> response (each step becomes one of our samples).
* ``toolbench`` — ToolBench / ToolLLaMA: ``{id, conversations: [{from: system|user|assistant|function, value}]}``.
* ``agentinstruct`` — AgentInstruct (AgentTuning): ``{id, conversations: [{from: human|gpt, loss, value}]}``.
* ``sharegpt_fc`` — LLaMA-Factory ShareGPT with function calls: ``{conversations: [{from: human|gpt|
  function_call|observation, value}], system, tools}`` (``tools`` is a JSON string).

Our samples are ARCHITECTURE.md training samples. To convert without loss they may carry optional extras:
message ``kind`` ("observation" for a tool result sent as a user turn, "function_call" for an assistant call),
sample ``tools`` (list of tool specs), ``query`` and ``meta`` (format-specific fields kept for the way back).

Each format's record is a ``TypedDict`` below (:data:`FormatRecord` is any of them); ``to_<format>`` writes and
``from_<format>`` reads it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypedDict, Union

from labkit.errors import DataFileError, UnknownNameError
from labkit.jsonl import iter_jsonl, read_text, write_jsonl
from labkit.records import Sample, SampleMessage


# --- the formats' records ----------------------------------------------------------------------------------------
Turn = TypedDict("Turn", {"from": str, "value": str})  # a ToolBench or ShareGPT turn ("from" is a Python keyword)


class AgentInstructTurn(Turn, total=False):
    loss: bool                   # default: true for "gpt" turns


class AgentInstructRecord(TypedDict):
    id: str
    conversations: list[AgentInstructTurn]   # from: human | gpt


class ToolBenchRecord(TypedDict):
    id: str
    conversations: list[Turn]                # from: system | user | assistant | function


class _ShareGPTFields(TypedDict):
    conversations: list[Turn]                # from: human | gpt | function_call | observation


class ShareGPTRecord(_ShareGPTFields, total=False):
    system: str
    tools: str                               # the tool specs as one JSON string


class _KAgentStepFields(TypedDict):
    instruction: str
    output: str


class KAgentInstructStep(_KAgentStepFields, total=False):
    """One prompt -> response of a KAgentInstruct entry (written in the order instruction, input, output,
    llm_name, human_edited)."""

    input: str
    llm_name: str
    human_edited: bool


class _KAgentInstructFields(TypedDict):
    id: str
    query: str
    source: str
    functions: list[str]                     # tool specs as JSON strings (meta-agent entries: free text)
    function_names: list[str]
    llm_prompt_response: list[KAgentInstructStep]


class KAgentInstructRecord(_KAgentInstructFields, total=False):
    extra_infos: dict[str, Any]              # free-form; ours: {query_id, template}


FormatRecord = Union[AgentInstructRecord, ToolBenchRecord, ShareGPTRecord, KAgentInstructRecord]


def _msg(role: str, content: str, loss: bool, kind: str | None = None) -> SampleMessage:
    m = SampleMessage(role=role, content=content, loss=loss)
    if kind:
        m["kind"] = kind
    return m


def _loss(m: SampleMessage) -> bool:
    return bool(m.get("loss", m["role"] == "assistant"))


# --- AgentInstruct -----------------------------------------------------------------------------------------------

def to_agentinstruct(samples: Sequence[Sample]) -> list[AgentInstructRecord]:
    out = []
    for s in samples:
        conv = []
        for m in s["messages"]:
            if m["role"] == "system":
                raise ValueError(f"sample {s['id']}: AgentInstruct has no system turn; fold it into the first user turn")
            conv.append({"from": "gpt" if m["role"] == "assistant" else "human", "loss": _loss(m),
                         "value": m["content"]})
        out.append({"id": s["id"], "conversations": conv})
    return out


def from_agentinstruct(records: Sequence[AgentInstructRecord]) -> list[Sample]:
    out = []
    for r in records:
        msgs = [_msg("assistant" if t["from"] == "gpt" else "user", t["value"],
                     bool(t.get("loss", t["from"] == "gpt"))) for t in r["conversations"]]
        out.append({"id": r["id"], "source": "agent", "query_id": r["id"], "template": "agentinstruct", "step": 0,
                    "messages": msgs})
    return out


# --- ToolBench / ToolLLaMA ---------------------------------------------------------------------------------------

_TB_FROM = {"system": "system", "user": "user", "assistant": "assistant", "function": "user"}


def to_toolbench(samples: Sequence[Sample]) -> list[ToolBenchRecord]:
    out = []
    for s in samples:
        conv = []
        for m in s["messages"]:
            frm = "function" if m.get("kind") == "observation" else m["role"]
            conv.append({"from": frm, "value": m["content"]})
        out.append({"id": s["id"], "conversations": conv})
    return out


def from_toolbench(records: Sequence[ToolBenchRecord]) -> list[Sample]:
    out = []
    for r in records:
        msgs = []
        for t in r["conversations"]:
            if t["from"] not in _TB_FROM:
                raise ValueError(f"record {r['id']}: unknown ToolBench role {t['from']!r}")
            role = _TB_FROM[t["from"]]
            msgs.append(_msg(role, t["value"], role == "assistant", "observation" if t["from"] == "function" else None))
        out.append({"id": str(r["id"]), "source": "agent", "query_id": str(r["id"]), "template": "toolllama",
                    "step": 0, "messages": msgs})
    return out


# --- LLaMA-Factory ShareGPT with function calls -----------------------------------------------------------------

def to_sharegpt_fc(samples: Sequence[Sample]) -> list[ShareGPTRecord]:
    out = []
    for s in samples:
        system, conv = "", []
        for m in s["messages"]:
            if m["role"] == "system":
                system += m["content"]
            elif m["role"] == "assistant":
                conv.append({"from": "function_call" if m.get("kind") == "function_call" else "gpt",
                             "value": m["content"]})
            else:
                conv.append({"from": "observation" if m.get("kind") == "observation" else "human",
                             "value": m["content"]})
        out.append({"conversations": conv, "system": system,
                    "tools": json.dumps(s.get("tools") or [], ensure_ascii=False)})
    return out


_SG_FROM = {"human": ("user", None), "gpt": ("assistant", None), "function_call": ("assistant", "function_call"),
            "observation": ("user", "observation")}


def from_sharegpt_fc(records: Sequence[ShareGPTRecord]) -> list[Sample]:
    out = []
    for i, r in enumerate(records):
        msgs = [_msg("system", r["system"], False)] if r.get("system") else []
        for t in r["conversations"]:
            if t["from"] not in _SG_FROM:
                raise ValueError(f"record {i}: unknown ShareGPT role {t['from']!r}")
            role, kind = _SG_FROM[t["from"]]
            msgs.append(_msg(role, t["value"], role == "assistant", kind))
        tools = json.loads(r["tools"]) if r.get("tools") else []
        out.append({"id": f"sharegpt-{i}", "source": "agent", "query_id": f"sharegpt-{i}", "template": "sharegpt_fc",
                    "step": 0, "messages": msgs, "tools": tools})
    return out


# --- KAgentInstruct ----------------------------------------------------------------------------------------------

def to_kagentinstruct(samples: Sequence[Sample], *, llm_name: str = "teacher") -> list[KAgentInstructRecord]:
    """Group single-turn step samples by (query_id, template) into one KAgentInstruct entry each."""
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(str(s["query_id"]), str(s["template"]))].append(s)
    out = []
    for (qid, template), steps in groups.items():
        steps.sort(key=lambda s: s["step"])
        first, meta = steps[0], steps[0].get("meta", {})
        tools = first.get("tools") or []
        functions = meta.get("functions", [json.dumps(t, ensure_ascii=False) for t in tools])
        prs = []
        for s in steps:
            user = [m for m in s["messages"] if m["role"] == "user"]
            reply = [m for m in s["messages"] if m["role"] == "assistant"]
            if len(user) != 1 or len(reply) != 1:
                raise ValueError(f"sample {s['id']}: KAgentInstruct steps are single prompt -> response pairs")
            m = s.get("meta", {})
            inp = m.get("input", "")
            instruction = user[0]["content"]
            if inp and instruction.endswith("\n" + inp):
                instruction = instruction[: -len(inp) - 1]
            prs.append({"instruction": instruction, "input": inp, "output": reply[0]["content"],
                        "llm_name": m.get("llm_name", llm_name), "human_edited": bool(m.get("human_edited", False))})
        out.append({"id": meta.get("entry_id", f"{qid}:{template}"), "query": first.get("query", ""),
                    "source": meta.get("kagent_source", template), "functions": functions,
                    "function_names": meta.get("function_names",
                                              [t.get("name", "") for t in tools] or list(first.get("tool_names", []))),
                    "llm_prompt_response": prs,
                    "extra_infos": meta.get("extra_infos", {"query_id": qid, "template": template})})
    return out


def from_kagentinstruct(records: Sequence[KAgentInstructRecord]) -> list[Sample]:
    out = []
    for r in records:
        tools = []
        for f in r.get("functions", []):
            try:
                tools.append(json.loads(f))
            except (TypeError, json.JSONDecodeError):  # meta-agent entries may hold free text
                tools.append({"raw": f})
        for i, step in enumerate(r["llm_prompt_response"]):
            prompt = step["instruction"] + ("\n" + step["input"] if step.get("input") else "")
            out.append({"id": f"{r['id']}-{i}", "source": "agent", "query_id": str(r["id"]),
                        "template": r.get("source", "kagentinstruct"), "step": i, "query": r.get("query", ""),
                        "messages": [_msg("user", prompt, False), _msg("assistant", step["output"], True)],
                        "tools": tools,
                        "meta": {"entry_id": r["id"], "kagent_source": r.get("source", ""),
                                 "functions": list(r.get("functions", [])),
                                 "function_names": list(r.get("function_names", [])),
                                 "extra_infos": r.get("extra_infos", {}), "input": step.get("input", ""),
                                 "llm_name": step.get("llm_name", ""), "human_edited": step.get("human_edited", False)}})
    return out


# --- registry + files --------------------------------------------------------------------------------------------

# name -> (write, read, the fields a record must have); each pair speaks its own record type (FormatRecord)
FORMATS: dict[str, tuple[Callable[[Sequence[Sample]], Sequence[FormatRecord]],
                         Callable[[Sequence[Any]], list[Sample]], tuple[str, ...]]] = {
    "kagentinstruct": (to_kagentinstruct, from_kagentinstruct, ("id", "query", "source", "functions",
                                                                 "function_names", "llm_prompt_response")),
    "toolbench": (to_toolbench, from_toolbench, ("id", "conversations")),
    "agentinstruct": (to_agentinstruct, from_agentinstruct, ("id", "conversations")),
    "sharegpt_fc": (to_sharegpt_fc, from_sharegpt_fc, ("conversations",)),
}


def _format(name: str) -> tuple[Any, Any, tuple[str, ...]]:
    if name not in FORMATS:
        raise UnknownNameError("data format", name, list(FORMATS))
    return FORMATS[name]


def to_format(samples: Sequence[Sample], fmt: str) -> Sequence[FormatRecord]:
    return _format(fmt)[0](samples)


def from_format(records: Sequence[FormatRecord], fmt: str) -> list[Sample]:
    return _format(fmt)[1](records)


def read_format(path: str | Path, fmt: str) -> list[Sample]:
    """Read a JSONL (or JSON list) file in ``fmt``; a record missing a field raises DataFileError with file:line."""
    _, _, fields = _format(fmt)
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(read_text(path))
        numbered: Iterable[tuple[int, dict[str, Any]]] = enumerate(data, start=1)
    else:
        numbered = iter_jsonl(path)
    records = []
    for line, rec in numbered:
        for f in fields:
            if f not in rec:
                raise DataFileError(path, f"missing field for format {fmt}", line=line, field=f)
        try:
            converted = from_format([rec], fmt)
            if "id" not in rec:  # ShareGPT records carry no id: name them by file and line
                for s in converted:
                    s["id"] = s["query_id"] = f"{path.stem}-{line}"
            records.extend(converted)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFileError(path, f"not a valid {fmt} record: {exc}", line=line) from None
    return records


def convert_file(src: str | Path, src_fmt: str, dst: str | Path, dst_fmt: str) -> int:
    """Convert between any two formats (``samples`` = our training JSONL). Returns records written."""
    from labkit.data.export import read_training_set

    samples = read_training_set(src) if src_fmt == "samples" else read_format(src, src_fmt)
    rows = samples if dst_fmt == "samples" else to_format(samples, dst_fmt)
    return write_jsonl(dst, rows)
