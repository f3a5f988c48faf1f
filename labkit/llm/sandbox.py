"""SandboxTeacher — an EMULATOR of a GPT-4-level teacher, answering from the sandbox world's gold annotations.

It is not a language model. Given a rendered agent prompt it finds the query in the gold bank
(``data/queries/agent_queries.jsonl`` plus any extra gold records), reads from the prompt's memory/scratchpad which
gold calls are already done, and writes the next gold call — or the finish action — in the output format the prompt
asks for (``labkit.formats.detect_format``, then that format object's ``render`` / ``finish``). Conclusion prompts get
the reference answer.
Unknown queries get a polite "cannot answer" finish (planning prompts) or answer (conclusion prompts).

Optional realistic noise (``noise`` = probability per prompt, reproducible: seeded by sha256(seed, prompt)) spoils an
answer the way real teachers do: wrong tool, broken JSON, extra prose, a missing argument, a wrong argument value.
``ChatResult.meta`` records the applied noise; token counts are ESTIMATES (characters / 4), labelled in ``meta``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import permutations
from pathlib import Path
from typing import Any, Literal

from labkit.jsonl import iter_jsonl, require
from labkit.paths import data_dir
from labkit.records import validate_gold
from labkit.types import ChatResult, Message, ToolCall

from .base import cut_at_stop, cut_until

NAME = "sandbox-teacher (emulator)"
NOISE_KINDS = ("wrong_tool", "broken_json", "extra_prose", "missing_field", "wrong_arg")
TOKEN_NOTE = "estimated: characters / 4 (emulator, no tokenizer)"
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CJK = re.compile(r"[\u4e00-\u9fff]")
UNKNOWN_ANSWER = {
    "zh": "抱歉，我在现有的工具和信息范围内无法回答这个问题。",
    "en": "Sorry, I cannot answer this question with the tools and information available.",
}
FINISH_THOUGHT = {
    "zh": "已完成的任务已经提供了回答问题所需的信息，任务完成。",
    "en": "The completed tasks give enough information to answer, so the task is complete.",
}
PROSE = {
    "zh": ("好的，我来分析一下这个问题。\n", "\n以上就是我的决策，希望对你有帮助！"),
    "en": ("Sure! Let me think about this step by step.\n", "\nI hope this helps!"),
}


@dataclass(frozen=True)
class GoldQuery:
    id: str
    query: str
    lang: str
    gold_calls: tuple[ToolCall, ...]
    thoughts: tuple[str, ...]
    reference_answer: str


@dataclass(frozen=True)
class TeacherPlan:
    """The emulator's clean decision for one prompt (:meth:`SandboxTeacher.plan`): a gold call to make, or the
    answer to finish / conclude with."""

    format: str                  # the output format the prompt asks for (labkit.formats.detect_format)
    query_id: str | None         # the gold query found in the prompt (None: an unknown query)
    lang: str
    step: int | str              # the gold call's index, or "finish" / "conclusion"
    thought: str
    call: ToolCall | None = None                   # a planning step: the next gold call
    answer: str = ""                               # finish / conclusion: the answer
    ungrounded_numbers: list[str] | None = None    # conclusion: numbers of the answer that the prompt lacks


def gold_from_record(rec: dict[str, Any], *, path: str | Path, line: int) -> GoldQuery:
    """Validate one gold-bank record; a bad one raises :class:`DataFileError` naming file, line and field."""
    parsed = validate_gold(rec, path, line)
    return GoldQuery(
        id=str(require(rec, "id", (str, int), path=path, line=line)),
        query=require(rec, "query", str, path=path, line=line),
        lang=str(rec.get("lang", "zh")),
        gold_calls=tuple(parsed),
        thoughts=tuple(str(t) for t in rec["thoughts"]),
        reference_answer=require(rec, "reference_answer", str, path=path, line=line),
    )


def squash(text: str) -> str:
    return " ".join(text.split())


def args_forms(args: dict[str, Any]) -> set[str]:
    """How a call's arguments are written in a memory/scratchpad: JSON in any key order (ASCII-escaped or not)."""
    orders = permutations(args.items()) if len(args) <= 5 else [tuple(args.items())]
    return {squash(json.dumps(dict(items), ensure_ascii=ascii)) for items in orders for ascii in (False, True)}


class SandboxTeacher:
    """An EMULATOR of a GPT-4 teacher over the sandbox world's gold annotations (deterministic; optional noise)."""

    name = NAME

    def __init__(
        self,
        noise: float = 0.0,
        seed: int = 0,
        *,
        gold: Iterable[dict[str, Any]] = (),
        bank: str | Path | None | Literal["default"] = "default",
    ):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.noise, self.seed = float(noise), int(seed)
        self.bank_path = data_dir() / "queries" / "agent_queries.jsonl" if bank == "default" else bank
        queries = [gold_from_record(r, path=self.bank_path, line=n) for n, r in iter_jsonl(self.bank_path)] \
            if self.bank_path is not None else []
        queries += [gold_from_record(r, path="<gold records>", line=i) for i, r in enumerate(gold, start=1)]
        # longest first, so a query that contains another query's text wins
        self.queries = sorted(queries, key=lambda q: -len(squash(q.query)))
        self._needles = [(squash(q.query), q) for q in self.queries if q.query.strip()]
        self._tool_names: list[str] | None = None
        self.last_noise: str | None = None

    def __repr__(self) -> str:
        return f"SandboxTeacher(EMULATOR of a GPT-4 teacher; noise={self.noise}, seed={self.seed}, " \
               f"{len(self.queries)} gold queries)"

    # -- reading the prompt -------------------------------------------------------------------------------------
    def match_query(self, prompt: str) -> GoldQuery | None:
        text = squash(prompt)
        return next((q for needle, q in self._needles if needle in text), None)

    def done_calls(self, prompt: str, q: GoldQuery) -> list[bool]:
        """Which gold calls already appear in the prompt's memory/scratchpad: its arguments as JSON (any key order)
        or its gold thought / task name (the goal text is removed first, so it cannot count)."""
        text = squash(prompt).replace(squash(q.query), " ")
        done = []
        for call, thought in zip(q.gold_calls, q.thoughts):
            by_args = bool(call.args) and any(form in text for form in args_forms(call.args))
            done.append(by_args or (bool(thought.strip()) and squash(thought) in text))
        return done

    # -- answering -----------------------------------------------------------------------------------------------
    def plan(self, prompt: str) -> TeacherPlan:
        """The clean decision for a prompt: format, matched query, step, and the call or answer to give."""
        from labkit.formats import detect_format, get_format

        fmt = detect_format(prompt)
        q = self.match_query(prompt)
        lang = q.lang if q else ("zh" if CJK.search(prompt) else "en")
        qid = q.id if q else None
        if not get_format(fmt).has_call_form:
            answer = q.reference_answer if q else UNKNOWN_ANSWER[lang]
            unsupported = [n for n in NUMBER.findall(answer) if n not in prompt]
            return TeacherPlan(fmt, qid, lang, "conclusion", "", answer=answer, ungrounded_numbers=unsupported)
        if q is not None:
            done = self.done_calls(prompt, q)
            nxt = next((i for i, d in enumerate(done) if not d), None)
            if nxt is not None:
                return TeacherPlan(fmt, qid, lang, nxt, q.thoughts[nxt], call=q.gold_calls[nxt])
        answer = q.reference_answer if q else UNKNOWN_ANSWER[lang]
        return TeacherPlan(fmt, qid, lang, "finish", FINISH_THOUGHT[lang], answer=answer)

    def render(self, plan: TeacherPlan) -> str:
        from labkit.formats import get_format

        fmt = get_format(plan.format)
        if plan.call is not None:
            return fmt.render(plan.call, plan.thought)
        if not fmt.has_call_form:
            return plan.answer
        return fmt.finish(plan.answer, plan.thought)  # the answer, or a task_complete call carrying it

    def _rng(self, prompt: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\x00{prompt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def noise_for(self, prompt: str) -> str | None:
        """The noise kind this teacher applies to ``prompt`` (None = clean). Reproducible for (seed, prompt)."""
        return self._noisy(prompt, self.plan(prompt))[1]

    def _noisy(self, prompt: str, plan: TeacherPlan) -> tuple[str, str | None]:
        clean = self.render(plan)
        rng = self._rng(prompt)
        if self.noise <= 0 or rng.random() >= self.noise:
            return clean, None
        call = plan.call
        kinds = ["extra_prose"] + (["broken_json"] if "}" in clean else [])
        if call is not None:
            kinds += ["wrong_tool"] + (["missing_field", "wrong_arg"] if call.args else [])
        kind = rng.choice(sorted(kinds, key=NOISE_KINDS.index))
        lang = plan.lang
        if kind == "extra_prose":
            head, tail = PROSE[lang]
            return head + clean + tail, kind
        if kind == "broken_json":
            cut = clean.rindex("}")
            return clean[:cut] + clean[cut + 1:], kind
        assert call is not None
        if kind == "wrong_tool":
            others = sorted(n for n in self.tool_names() if n not in (call.name, "task_complete"))
            bad = replace(call, name=rng.choice(others))
        elif kind == "missing_field":
            drop = rng.choice(sorted(call.args))
            bad = replace(call, args={k: v for k, v in call.args.items() if k != drop})
        else:
            key = rng.choice(sorted(call.args))
            bad = replace(call, args={**call.args, key: self._wrong_value(call.name, key, call.args[key], rng)})
        return self.render(replace(plan, call=bad)), kind

    def _wrong_value(self, tool: str, key: str, value: Any, rng: random.Random) -> Any:
        """A plausible but wrong value: another query's value for the same tool argument, else a distorted one."""
        pool = sorted({json.dumps(c.args[key], ensure_ascii=False) for q in self.queries for c in q.gold_calls
                       if c.name == tool and key in c.args and c.args[key] != value})
        if pool:
            return json.loads(rng.choice(pool))
        if isinstance(value, bool):
            return not value
        if isinstance(value, (int, float)):
            return value * 10 + 1
        text = str(value)
        return text[: max(1, len(text) // 2)] if len(text) > 1 else text + text

    def tool_names(self) -> list[str]:
        """Sandbox tool names (candidates for the wrong-tool noise)."""
        if self._tool_names is None:
            from labkit.tools import default_registry

            self._tool_names = default_registry().names()
        return self._tool_names

    def chat(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        until: str | None = None,
    ) -> ChatResult:
        """Answer the last user turn. ``temperature`` is ignored (deterministic); ``max_new_tokens`` cuts the text
        at about 4 characters per token, as a real API would truncate."""
        prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        plan = self.plan(prompt)
        text, kind = self._noisy(prompt, plan)
        self.last_noise = kind
        text = cut_until(cut_at_stop(text, stop), until)
        truncated = len(text) > max_new_tokens * 4
        text = text[: max_new_tokens * 4]
        meta = {
            "emulator": True, "noise": kind, "format": plan.format, "query_id": plan.query_id,
            "step": plan.step, "truncated": truncated, "token_counts": TOKEN_NOTE,
        }
        if plan.ungrounded_numbers is not None:
            meta["ungrounded_numbers"] = plan.ungrounded_numbers
        return ChatResult(
            text=text, model=self.name, prompt_tokens=math.ceil(sum(len(m["content"]) for m in messages) / 4),
            completion_tokens=math.ceil(len(text) / 4), meta=meta,
        )

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]
