"""Fuzz: >= 10,000 random and mutated outputs per built-in output format (2,000 per declared format, every style and
finish); parsing must never raise or hit its safety net."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable

from labkit.parsing import ERROR_CODES, OUTPUT_FORMATS, parse_output, render_gold
from labkit.types import ParsedAction, ParseError, ToolCall

N_PER_FORMAT = 10_000
SEED = 20250315

CALLS = [ToolCall("get_weather_info", {"location": "北京", "start_date": "2025-03-15", "end_date": "2025-03-15"}),
         ToolCall("web_search", {"query": 'quote " brace { 引号'}), ToolCall("task_complete", {}),
         ToolCall("calculator", {"expression": "(3+4)*2"})]
ANSWERS = ["北京现在晴。", "42", "The answer is {not json}."]
NOISE = ["{", "}", "[", "]", '"', "'", ":", ",", "\n", "```", "```json", "<|startofthink|>", "<|endofthink|>",
         "<end_of_turn>", "<eos>", "Action:", "Action Input:", "Final Answer:", "Thought:", "Observation:", "Finish",
         "give_up_and_restart", '"return_type"', '"task_name"', '"command"', '"args"', '"thoughts"', "null", "\\",
         "\\u12", "\ud800", "\x00", "🙂", "中文", "\t", " " * 50]


def seeds() -> list[str]:
    out = []
    for fmt in OUTPUT_FORMATS:
        for call in CALLS:
            if fmt != "conclusion":
                out.append(render_gold(call, fmt, "思考 thought"))
        for answer in ANSWERS:
            if fmt not in ("task_json", "autogpt"):
                out.append(render_gold(answer, fmt, "t"))
    out.append(render_gold(ParsedAction("stuck", give_up=True), "toolllama"))
    return out


def mutate(rng: random.Random, text: str) -> str:
    ops: list[Callable[[str], str]] = [
        lambda s: s[: rng.randrange(len(s) + 1)],                                  # truncation
        lambda s: s.replace(rng.choice("{}[]"), "", rng.randrange(1, 4)),          # bracket deletion
        lambda s: s.replace('"', "'") if rng.random() < 0.5 else s.replace("'", '"'),  # swapped quotes
        lambda s: s[:(i := rng.randrange(len(s) + 1))] + rng.choice(NOISE) + s[i:],  # inserted tokens
        lambda s: rng.choice(NOISE) * rng.randrange(1, 40) + s,                   # nested garbage
        lambda s: "{" * rng.randrange(1, 300) + s + "]" * rng.randrange(0, 300),  # deep nesting
        lambda s: s * rng.randrange(2, 30),                                       # very long / repeated
        lambda s: "".join(rng.sample(s, len(s))) if len(s) < 400 else s[::-1],    # shuffled
        lambda s: s.encode("utf-8", "surrogatepass")[: rng.randrange(len(s) + 1)].decode("utf-8", "replace"),
    ]
    for _ in range(rng.randrange(1, 4)):
        text = rng.choice(ops)(text)
    return text


def random_text(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200))).decode("latin-1")
    if kind == 1:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(100)))
    if kind == 2:
        return "".join(rng.choice(NOISE) for _ in range(rng.randrange(60)))
    return rng.choice("{[") * rng.randrange(5000, 30000)  # very long, deeply nested


def corpus() -> list[str]:
    rng = random.Random(SEED)
    base = seeds()
    texts = base[:]
    while len(texts) < N_PER_FORMAT:
        texts.append(mutate(rng, rng.choice(base)) if rng.random() < 0.8 else random_text(rng))
    return texts


def test_parse_output_survives_fuzz_for_every_format() -> None:
    texts = corpus()
    assert len(texts) >= N_PER_FORMAT
    start = time.process_time()  # CPU seconds of this process: a guard against runaway parsing, not a speed target
    outcomes: Counter[str] = Counter()
    repairs: Counter[str] = Counter()
    for fmt in OUTPUT_FORMATS:
        for text in texts:
            result = parse_output(text, fmt)  # an exception here fails the test
            assert isinstance(result, (ParsedAction, ParseError))
            if isinstance(result, ParseError):
                assert result.code in ERROR_CODES and result.code != "internal_error", (fmt, text[:200], result)
                outcomes[result.code] += 1
            else:
                assert (result.call is not None) + (result.final_answer is not None) + result.give_up == 1
                outcomes["ok"] += 1
                repairs.update(result.repaired)
    elapsed = time.process_time() - start
    assert elapsed < 45, f"fuzz took {elapsed:.1f} CPU s"
    assert outcomes["ok"] > 1000 and len(outcomes) >= 6, outcomes  # the mutations reach both paths
    assert repairs["json_repair"] > 0 and repairs["trailing_prose"] > 0, repairs


# ---------------------------------------------------------------- formats declared in template files

N_PER_DECLARED = 2_000
DECLARED_LABELS = {"json": ("why", "tool", "input", "answer", "result"), "yaml": ("reason", "action", "params", "final", "got"),
                   "xml": ("思考", "工具", "参数", "答案", "结果"), "kv": ("plan", "call", "with", "reply", "obs"),
                   "prefixed": ("Reasoning", "Tool", "Tool Input", "Answer", "Result")}


def declared_formats() -> list:
    from labkit.formats import declare

    out = []
    for style, (thought, tool, args, answer, obs) in DECLARED_LABELS.items():
        for finish in ("answer", "call"):
            fields = {"thought": thought, "tool": tool, "args": args, "observation": obs}
            if finish == "answer":
                fields["answer"] = answer
            out.append(declare(f"fuzz_{style}_{finish}", {"style": style, "fields": fields, "finish": finish}))
    return out


def test_declared_parsers_survive_fuzz() -> None:
    rng = random.Random(SEED + 1)
    outcomes: Counter[str] = Counter()
    start = time.process_time()  # CPU seconds, as above: wall time on a shared CI machine says nothing
    for fmt in declared_formats():
        base = [fmt.render(c, "思考 thought\nline 2") for c in CALLS] + [fmt.observation_text("obs {")]
        base += [fmt.render(a, "t") for a in ANSWERS] if fmt.has_answer_form else []
        texts = base + [mutate(rng, rng.choice(base)) if rng.random() < 0.8 else random_text(rng)
                        for _ in range(N_PER_DECLARED)]
        for text in texts:
            result = fmt.parse(text)  # an exception here fails the test
            if isinstance(result, ParseError):
                assert result.code in ERROR_CODES and result.code != "internal_error", (fmt.name, text[:200], result)
                outcomes[result.code] += 1
            else:
                assert (result.call is not None) + (result.final_answer is not None) + result.give_up == 1
                outcomes["ok"] += 1
        for text in base[: len(CALLS)]:  # the clean renders read back exactly
            assert fmt.parse(text).repaired == ()
    assert time.process_time() - start < 45
    assert outcomes["ok"] > 2000 and len(outcomes) >= 4, outcomes


# ---------------------------------------------------------------- hostile outputs (issue 20, finding 5)

def deep(n: int) -> str:
    return "[" * n + "1" + "]" * n


HOSTILE_ARGS = {  # a JSON value a model might put where the arguments go
    "5,000-digit integer": "9" * 5000,
    "500-deep list": deep(500),
    "100k-deep list": deep(100_000),
    "deep object": '{"a": ' * 500 + "1" + "}" * 500,
    "1 MB string": json.dumps("a" * 1_000_000),
    "NaN and Infinity": '{"x": NaN, "y": -Infinity, "z": 1e999}',
    "lone surrogate": '"\\ud800 \ud800"',
    "NUL": '"a\\u0000b\x00c"',
}


def hostile_outputs(fmt) -> list[str]:
    """Each hostile value as the arguments of a step in ``fmt``, and as its whole output."""
    out = []
    for value in HOSTILE_ARGS.values():
        if fmt.has_call_form:
            template = fmt.render(ToolCall("web_search", {"query": "ZQARG"}), "thought \x00 \ud800")
            out.append(template.replace('"ZQARG"', value).replace("ZQARG", value))
        out.append(value)
    return out


def test_hostile_outputs_give_a_step_or_a_typed_error_never_an_exception() -> None:
    from labkit.bounds import MAX_JSON_DEPTH, deeper_than
    from labkit.formats import BUILTIN_FORMATS
    from labkit.jsonl import dumps_line
    from labkit.records import parsed_to_dict

    for fmt in [*BUILTIN_FORMATS.values(), *declared_formats()]:
        for text in hostile_outputs(fmt):
            result = fmt.parse(text)
            assert not (isinstance(result, ParseError) and result.code == "internal_error"), (fmt.name, result)
            dumps_line(parsed_to_dict(result))  # the step can be stored in a trace (no RecursionError)
            fmt.is_complete(text)  # the stopping rule reads it too
            if isinstance(result, ParsedAction) and result.call is not None:  # what is kept is bounded
                assert not deeper_than(result.call.args, MAX_JSON_DEPTH), (fmt.name, text[:80])
