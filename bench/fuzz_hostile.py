"""Hostile-input fuzz bench (issue 20): every parser, the JSON readers, the JSONL/JSON file readers, the template
loader and renderer, the scorer, the agent loop, the tool registry and ``labkit score`` fed the hostile families a
tester uses - deep nesting, huge numbers, 5 MB strings, NUL, lone surrogates, invalid UTF-8, YAML alias bombs and
render bombs, empty or whitespace and truncated input - with, per target, the number of inputs, how each ended
(handled / a typed failure / a clean refusal), the exceptions, the slowest case and the peak memory. The goal
(issue 20): 0 exceptions, every case under 2 s and 512 MB.

    nice -n 15 python bench/fuzz_hostile.py              # about 10 minutes of CPU on a 2-core machine
    nice -n 15 python bench/fuzz_hostile.py --mb 1       # 1 MB instead of 5 MB strings (quicker)
    nice -n 15 python bench/fuzz_hostile.py --quick --mb 0.01 --targets tools cli   # two values per family

Each target runs in its own process under a 3 GB address-space limit (so a missing protection shows up as a
``MemoryError`` here, not as a frozen machine). The peak memory of a case is the process's resident-set high-water
mark during that case (reset before it through /proc/self/clear_refs; the imports' resident set included). On a
shared machine the CPU seconds are the fairer time. How a case ends:

* **handled** - a parse, a score, an agent trace, a tool's answer, a loaded template, a file read, CLI exit 0;
* **failed** - the typed failure the entry point documents: a ``ParseError``, a score of 0, a trace that stopped
  with an error, an ``Observation(ok=False)``;
* **refused** - a ``LabkitError`` / ``DataFileError`` (the documented clean refusal of a bad file), CLI exit 2 with
  one ``labkit: error:`` line;
* **exception** - anything else escaping the public entry point, a parser's ``internal_error`` safety net, a broken
  promise (a prompt over 50,000 characters, an observation over its cap, a hostile template file that loads, an error
  message over 2,000 characters, a CLI traceback or a second stderr line). The goal is 0.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the unit fuzz test's declared formats

import record  # noqa: E402

TARGETS = ("parsers", "json", "files", "templates", "scorer", "agent", "tools", "cli")
FIXTURE = ROOT / "tests" / "fixtures" / "kagentbench_sample.jsonl"
AS_LIMIT = 3 * 1024 ** 3
OUTCOMES = ("handled", "failed", "refused", "exception")
LIMIT_S, LIMIT_MB = 2.0, 512


# ---------------------------------------------------------------- hostile values

def payloads(mb: float) -> dict[str, dict[str, Callable[[], str]]]:
    """family -> {name: () -> JSON-ish text}; the big ones are built on demand."""
    n = int(mb * 1_000_000)
    return {
        "deep nesting": {
            "500-deep list": lambda: "[" * 500 + "1" + "]" * 500,
            "100k open brackets": lambda: "[" * 100_000,
            "500-deep object": lambda: '{"a": ' * 500 + "1" + "}" * 500,
            "5,000-deep mixed": lambda: '[{"a": ' * 2500 + "1" + "}]" * 2500,
            "100k-deep list": lambda: "[" * 100_000 + "]" * 100_000,
            "200k-deep object": lambda: '{"a":' * 200_000 + "1" + "}" * 200_000,
        },
        "huge numbers": {
            "5,000-digit integer": lambda: "9" * 5000,
            "100,000-digit integer": lambda: "1" * 100_000,
            "1e400 and -1e400": lambda: '{"x": 1e400, "y": -1e400}',
            "NaN / Infinity": lambda: '{"x": NaN, "y": Infinity, "z": -Infinity}',
            "4,300-digit float": lambda: "0." + "3" * 4300,
            "exponent 1e99999999": lambda: "1e99999999",
        },
        "5 MB strings": {
            "ASCII": lambda: json.dumps("a" * n),
            "CJK": lambda: json.dumps("中" * n, ensure_ascii=False),
            "CJK as \\u escapes": lambda: json.dumps("中" * (n // 6)),
            "words": lambda: json.dumps("word " * (n // 5)),
            "bad escapes": lambda: '"' + "\\q" * (n // 2) + '"',
            "markers": lambda: json.dumps("Action: web_search\nAction Input: {\n" * (n // 36)),
            "braces": lambda: json.dumps("{" * n),
            "unquoted 5 MB": lambda: "x" * n,
        },
        "NUL": {
            "raw NUL": lambda: '"a\x00b"',
            "escaped NUL": lambda: '"a\\u0000b"',
            "NUL run": lambda: json.dumps("\x00" * 10_000, ensure_ascii=False),
        },
        "lone surrogates": {
            "raw lone surrogate": lambda: '"\ud800x\udfff"',
            "escaped lone surrogate": lambda: '"\\ud800x\\udfff"',
            "mixed surrogates": lambda: json.dumps("\ud83d" * 1000 + "🙂" + "\udc00" * 1000, ensure_ascii=False),
        },
        "empty or whitespace": {
            "empty": lambda: "",
            "spaces and newlines": lambda: " \n\t\r\n  ",
            "1 MB of whitespace": lambda: " \n" * 500_000,
            "empty string": lambda: '""',
        },
        "truncated JSON": {
            "open object": lambda: '{"task_name": "t", "command": {"name": "web_search", "args": {"query": "北',
            "cut escape": lambda: '"a\\u12',
            "cut number": lambda: '[1, 2, -',
            "lone quote": lambda: '"',
        },
    }


def pick(items: list[Any], quick: bool) -> list[Any]:
    """All of a family, or (``quick``) its first two."""
    return items[:2] if quick else items


def cases(mb: float, quick: bool = False) -> Iterator[tuple[str, str, Callable[[], str]]]:
    """Every hostile value (``quick``: the first two of each family)."""
    for family, items in payloads(mb).items():
        for name, make in pick(list(items.items()), quick):
            yield family, name, make


def py_values(mb: float, quick: bool = False) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """Hostile Python values (a tool's arguments as a model's JSON would decode to them); deep ones built
    iteratively (``json.loads`` itself cannot build them)."""
    def nest(depth: int, wrap: Callable[[Any], Any]) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = wrap(value)
        return value

    n = int(mb * 1_000_000)
    families: dict[str, dict[str, Callable[[], Any]]] = {
        "deep nesting": {"500-deep dict": lambda: nest(500, lambda v: {"a": v}),
                         "100k-deep dict": lambda: nest(100_000, lambda v: {"a": v}),
                         "100k-deep list": lambda: nest(100_000, lambda v: [v])},
        "huge numbers": {"5,000-digit int": lambda: 10 ** 5000 - 1, "inf": lambda: float("inf"),
                         "nan": lambda: float("nan"), "1e308 * 10 (inf)": lambda: 1e308 * 10},
        "5 MB strings": {"ASCII": lambda: "a" * n, "CJK": lambda: "中" * n},
        "NUL": {"NUL": lambda: "a\x00b", "NUL run": lambda: "\x00" * 10_000},
        "lone surrogates": {"lone surrogate": lambda: "\ud800", "surrogates around text": lambda: "\udfffx\ud800"},
        "empty or whitespace": {"empty": lambda: "", "whitespace": lambda: " \n\t "},
    }
    for family, items in families.items():
        for name, make in pick(list(items.items()), quick):
            yield family, name, make


def formats() -> list[Any]:
    """The six built-in formats and one declared format of every style and finish (the unit fuzz test's)."""
    from labkit.formats import BUILTIN_FORMATS
    from test_parsing_fuzz import declared_formats

    return [*BUILTIN_FORMATS.values(), *declared_formats()]


def placements(fmt: Any, value: str) -> dict[str, str]:
    """The hostile value as a whole output, as the arguments, as the thought and as the answer of a step."""
    from labkit.types import ToolCall

    out = {"whole output": value}
    if fmt.has_call_form:
        out["arguments"] = fmt.render(ToolCall("web_search", {"query": "ZQ"}), "t").replace('"ZQ"', value)
        out["thought"] = fmt.render(ToolCall("web_search", {"query": "q"}), "ZQ").replace("ZQ", value)
    if fmt.has_answer_form:
        out["answer"] = fmt.render("ZQ", "t").replace("ZQ", value)
    return out


# ---------------------------------------------------------------- measuring

def _peak_rss_reset() -> None:
    """Reset the process's resident-set high-water mark (Linux: ``5`` to /proc/self/clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """The process's resident-set high-water mark since the last reset, in MB (imports included)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scratch(prefix: str) -> Path:
    """A temporary folder removed when the process ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


class Broken(Exception):
    """A promise of the entry point broken without an exception (counted as one)."""


class Case:
    """One input: the target sets ``outcome`` to "failed" for a typed failure; a raise decides the rest."""

    def __init__(self) -> None:
        self.outcome = "handled"


class Tally:
    def __init__(self, target: str):
        self.target, self.rows, self.failures = target, [], []
        self.baseline = 1e9

    @contextlib.contextmanager
    def case(self, label: str) -> Iterator[Case]:
        from labkit.errors import LabkitError

        _peak_rss_reset()
        self.baseline = min(self.baseline, _peak_rss_mb())
        wall, cpu, kids = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        c, error = Case(), None
        try:
            yield c
        except LabkitError as exc:  # the documented clean refusal
            c.outcome = "refused"
            if len(str(exc)) > 2000:
                c.outcome, error = "exception", f"Broken: a {len(str(exc))}-character error message"
        except Exception as exc:  # noqa: BLE001 - the bench counts them
            c.outcome, error = "exception", f"{type(exc).__name__}: {str(exc)[:200]}"
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # a process the case ran: its CPU and peak RSS too
        cpu = time.process_time() - cpu + (after.ru_utime + after.ru_stime) - (kids.ru_utime + kids.ru_stime)
        wall, peak = time.perf_counter() - wall, _peak_rss_mb()
        if after.ru_maxrss > kids.ru_maxrss:
            peak = max(peak, after.ru_maxrss / 1024)
        self.rows.append({"case": label, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak,
                          "outcome": c.outcome, "error": error})
        if error:
            self.failures.append(f"{label}: {error}")

    def summary(self) -> dict[str, Any]:
        slow = max(self.rows, key=lambda r: r["cpu_s"])
        slow_wall = max(self.rows, key=lambda r: r["wall_s"])
        big = max(self.rows, key=lambda r: r["peak_mb"])
        outcomes = Counter(r["outcome"] for r in self.rows)
        return {"target": self.target, "inputs": len(self.rows), **{o: outcomes[o] for o in OUTCOMES},
                "exceptions": outcomes["exception"],
                "families": sorted({r["case"].split(" / ")[0] for r in self.rows}),
                "slowest_cpu_s": round(slow["cpu_s"], 3), "slowest_cpu_case": slow["case"],
                "slowest_wall_s": round(slow_wall["wall_s"], 3), "slowest_wall_case": slow_wall["case"],
                "over_2s_cpu": sum(r["cpu_s"] >= LIMIT_S for r in self.rows),
                "over_2s_wall": sum(r["wall_s"] >= LIMIT_S for r in self.rows),
                "peak_case_mb": round(big["peak_mb"], 1), "peak_case": big["case"],
                "baseline_mb": round(self.baseline, 1),
                "over_512mb": sum(r["peak_mb"] >= LIMIT_MB for r in self.rows),
                "cpu_s": round(sum(r["cpu_s"] for r in self.rows), 1),
                "failures": self.failures[:20]}


# ---------------------------------------------------------------- targets

def run_parsers(t: Tally, mb: float, quick: bool = False) -> None:
    """Every output format's ``parse`` and ``is_complete`` (the hostile value as the whole output, the arguments,
    the thought, the answer), the ``labkit.parsing`` facade by name and the scorer's official step readers."""
    from labkit.evaluate.scorer import read_step
    from labkit.jsonl import dumps_line
    from labkit.parsing import OUTPUT_FORMATS, parse_output
    from labkit.records import parsed_to_dict
    from labkit.types import ParseError

    def parsed(c: Case, result: Any) -> None:
        if isinstance(result, ParseError):
            if result.code == "internal_error":
                raise Broken(f"the parser's safety net: {result.message[:200]}")
            c.outcome = "failed"
        dumps_line(parsed_to_dict(result))  # storable in a trace

    fmts = formats()
    for family, name, make in cases(mb, quick):
        value = make()
        for fmt in fmts:
            for where, text in placements(fmt, value).items():
                with t.case(f"{family} / {name} / {fmt.name} / {where}") as c:
                    parsed(c, fmt.parse(text))
                    fmt.is_complete(text)  # the generation stopping rule
        for fmt_name in OUTPUT_FORMATS:
            with t.case(f"{family} / {name} / parse_output(..., {fmt_name!r})") as c:
                parsed(c, parse_output(value, fmt_name))
        for parser in ("react", "toolllama", "autogpt", "kuaiagent", "modelscope"):  # the scorer's official reads
            with t.case(f"{family} / {name} / official {parser}"):
                read_step(value, parser)
        del value


def run_json(t: Tally, mb: float, quick: bool = False) -> None:
    """The JSON scanners (``labkit.jsonscan``), the tolerant reader with its json_repair path
    (``labkit.formats.jsontext``) and ``labkit.jsonl.loads_json``, on the value alone, inside an object, after prose
    and with a single-quote slip (so the repair path runs)."""
    from labkit.formats.jsontext import read_json_object
    from labkit.jsonl import loads_json
    from labkit.jsonscan import first_object_end, scan_object
    from labkit.types import ParseError

    for family, name, make in cases(mb, quick):
        value = make()
        texts = {"value": value, "in an object": '{"a": ' + value + "}", "after prose": "好的：" + value,
                 "needs repair": "{'a': " + value + ", 'b': 1,}"}
        for where, text in texts.items():
            with t.case(f"{family} / {name} / jsonscan / {where}"):
                scan = scan_object(text)
                if first_object_end(text) != scan.end:
                    raise Broken("first_object_end disagrees with scan_object")
            with t.case(f"{family} / {name} / read_json_object / {where}") as c:
                result = read_json_object(text)
                if isinstance(result, ParseError):
                    if result.code == "internal_error":
                        raise Broken(result.message[:200])
                    c.outcome = "failed"
            with t.case(f"{family} / {name} / loads_json / {where}"):
                loads_json(text, "<fuzz>", 1)
        del value, texts


def _hostile_files(mb: float, quick: bool) -> Iterator[tuple[str, str, bytes]]:
    """(family, name, bytes of a JSONL file): every hostile value as a record's value, then bytes no text has."""
    for family, name, make in cases(mb, quick):
        value = make()
        yield family, name, ('{"id": "r1", "a": ' + value + "}\n").encode("utf-8", "surrogatepass")
        del value
    n = int(mb * 1_000_000)
    good = b'{"id": "r1", "a": "b"}\n'
    raw = {
        "invalid UTF-8": {"0xff byte": good + b'{"a": "\xff"}\n', "cut multi-byte character": b'{"a": "\xe4\xb8"}\n',
                          "overlong encoding": b'{"a": "\xc0\xaf"}\n',
                          "UTF-8-encoded surrogate": b'{"a": "\xed\xa0\x80"}\n',
                          "GBK text": '{"a": "中文"}\n'.encode("gbk"), "5 MB of 0x80": good + b"\x80" * n + b"\n",
                          "UTF-16 BOM then odd bytes": b"\xff\xfe{\x00\"\x00a"},
        "NUL": {"NUL bytes between records": good + b"\x00" * 1000 + b"\n" + good, "only NUL": b"\x00" * 4096},
        "empty or whitespace": {"empty file": b"", "whitespace file": b" \n\n\t\n", "5 MB of newlines": b"\n" * n},
        "truncated JSON": {"torn tail": good + b'{"id": "r2", "a": "hal', "torn in a character": good + b'{"a": "\xe4'},
    }
    for family, items in raw.items():
        for name, data in pick(list(items.items()), quick):
            yield family, name, data


def run_files(t: Tally, mb: float, quick: bool = False) -> None:
    """``labkit.jsonl`` readers over hostile files: ``read_jsonl`` (strict and torn-tail tolerant), ``read_json``,
    ``read_text``, and the benchmark / predictions loaders: a value or a ``DataFileError`` naming file and line."""
    from labkit.evaluate.scorer import load_predictions
    from labkit.jsonl import read_json, read_jsonl, read_text

    tmp = scratch("fuzz_files_")
    path = tmp / "hostile.jsonl"
    readers: dict[str, Callable[[Path], Any]] = {
        "read_jsonl": read_jsonl, "read_jsonl(tolerate_torn_tail)": lambda p: read_jsonl(p, tolerate_torn_tail=True),
        "read_json": read_json, "read_text": read_text, "load_predictions": load_predictions}
    for family, name, data in _hostile_files(mb, quick):
        path.write_bytes(data)
        for reader, read in readers.items():
            with t.case(f"{family} / {name} / {reader}"):
                read(path)
    for reader, read in readers.items():  # a folder where a file is expected, a file that is not there
        with t.case(f"not a file / a folder / {reader}"):
            read(tmp)
        with t.case(f"not a file / missing / {reader}"):
            read(tmp / "missing.jsonl")


def _records() -> list[dict[str, Any]]:
    from labkit.evaluate.benchmark import load_benchmark

    return load_benchmark(FIXTURE)


def _hostile_predictions(records: list[dict[str, Any]], text: Any) -> list[dict[str, Any]]:
    return [{**r, "model_predict": text if r["type"] == "profile" else {k: text for k in r["prompt_input"]}}
            for r in records]


def _scorer_texts(mb: float, quick: bool) -> Iterator[tuple[str, str]]:
    """Each hostile value whole, as KAgent JSON arguments and as a ReAct Action Input (the fixture's formats)."""
    for family, name, make in cases(mb, quick):
        value = make()
        yield f"{family} / {name} / whole", value
        yield f"{family} / {name} / JSON args", '{"task_name": "t", "command": {"name": "web_search", "args": ' \
                                                 '{"text": ' + value + "}}}"
        yield f"{family} / {name} / ReAct input", "Thought: t\nAction: web_search\nAction Input: {\"text\": " + \
            value + "}"


def run_scorer(t: Tally, mb: float, quick: bool = False) -> None:
    """``score_predictions`` in labkit mode and in the official-compat mode, one hostile prediction record a case."""
    from labkit.evaluate.differences import ScoringOptions
    from labkit.evaluate.scorer import score_predictions

    records = _records()
    for label, text in _scorer_texts(mb, quick):
        for rec, pred in zip(records, _hostile_predictions(records, text)):  # a case: one predictions line
            for mode, options in (("labkit", ScoringOptions.labkit()), ("kagentbench", ScoringOptions.official())):
                with t.case(f"{label} / {rec['type']} / {mode}") as c:
                    report = score_predictions([rec], [pred], options=options)
                    if not report.overall:
                        c.outcome = "failed"  # scored 0


class Scripted:
    """A ChatModel answering with fixed outputs (then a plain answer)."""

    name = "scripted"

    def __init__(self, outputs: list[str]):
        self.outputs, self.longest_prompt = list(outputs), 0

    def chat(self, messages: list[Any], **kw: Any) -> Any:
        from labkit.types import ChatResult

        self.longest_prompt = max(self.longest_prompt, len(messages[-1]["content"]))
        return ChatResult(text=self.outputs.pop(0) if self.outputs else "答案", model=self.name)

    def chat_batch(self, batch: list[Any], **kw: Any) -> list[Any]:
        return [self.chat(m, **kw) for m in batch]


MAX_PROMPT = 50_000  # what one hostile step may make the next prompt grow to (it is clipped to ~2,000 characters)


def run_agent(t: Tally, mb: float, quick: bool = False) -> None:
    """``run_agent`` (the plan loop with its conclusion for JSON planning templates, the ReAct loop for the others)
    with a scripted model answering the hostile step twice: a trace, never an exception, prompts capped."""
    from labkit.agent import run_agent as agent
    from labkit.templates import load_template

    templates = {name: load_template(name) for name in ("kagent_planning_zh", "react", "toolllama", "autogpt",
                                                        "modelscope")}
    for family, name, make in cases(mb, quick):
        value = make()
        for tname, tmpl in templates.items():
            for where, text in placements(tmpl.format, value).items():
                with t.case(f"{family} / {name} / {tname} / {where}") as c:
                    model = Scripted([text, text])
                    trace = agent(model, "北京天气怎么样？", template=tmpl, tools=["web_search", "calculator"],
                                  max_steps=3)
                    json.dumps(trace.to_dict())
                    if model.longest_prompt > MAX_PROMPT:
                        raise Broken(f"a prompt of {model.longest_prompt} characters")
                    if trace.error:
                        c.outcome = "failed"
        del value


CALCULATOR = {"round(1, -10**8)": "round(1, -10**8)", "round(1, 10**8)": "round(1, 10**8)",
              "10**10**10": "10**10**10", "9**9**9**9": "9**9**9**9", "factorial(10**6)": "factorial(10**6)",
              "1e400 * 1e400": "1e400 * 1e400", "5,000-digit literal": "9" * 5000,
              "2**64**64": "2**64**64", "(10**999)**2": "(10**999)**2", "300 parentheses": "(" * 150 + "1" + ")" * 150,
              "100k parentheses": "(" * 50_000 + "1" + ")" * 50_000, "'a'*10**9": "'a'*10**9",
              "NUL": "1+\x00", "lone surrogate": "1+\ud800", "empty": "", "exp(10**6)": "exp(10**6)",
              "sqrt(-1)": "sqrt(-1)", "log(0)": "log(0)", "1/0": "1/0", "tan(1e308)": "tan(1e308)"}


def run_tools(t: Tally, mb: float, quick: bool = False) -> None:
    """``ToolRegistry.call`` of every sandbox tool with every argument hostile, hostile tool names and arguments
    that are not an object, and the calculator on expressions built to run long: an ``Observation`` whose text
    stays under its cap."""
    from labkit.tools import default_registry
    from labkit.tools.registry import MAX_OBSERVATION_CHARS
    from labkit.types import ToolCall

    registry = default_registry()

    def call(label: str, tool_call: ToolCall) -> None:
        with t.case(label) as c:
            obs = registry.call(tool_call)
            if len(obs.text) > MAX_OBSERVATION_CHARS + 100:
                raise Broken(f"an observation of {len(obs.text)} characters")
            if not obs.ok:
                c.outcome = "failed"

    for family, name, make in py_values(mb, quick):
        value = make()
        for tool in registry:
            params = list(tool.parameters.get("properties", {})) or ["x"]
            call(f"{family} / {name} / {tool.name}(every argument)", ToolCall(tool.name, {p: value for p in params}))
        call(f"{family} / {name} / as the tool name", ToolCall(value, {}))
        call(f"{family} / {name} / as the arguments", ToolCall("web_search", value))
        if isinstance(value, str):
            call(f"{family} / {name} / as an argument name", ToolCall("web_search", {value: "q"}))
        del value
    for name, expression in list(CALCULATOR.items())[:4 if quick else None]:
        call(f"calculator / {name}", ToolCall("calculator", {"expression": expression}))


def run_cli(t: Tally, mb: float, quick: bool = False) -> None:
    """``labkit score`` (``labkit.cli.main``, and a few through a real ``python -m labkit.cli`` process) on a
    one-record benchmark with hostile predictions (exit 0 expected) and hostile files (exit 0, or 2 with one
    ``labkit: error:`` line)."""
    from labkit.cli import main
    from labkit.jsonl import dumps_line

    records = _records()
    tmp = scratch("fuzz_cli_")
    bench, preds = tmp / "bench.jsonl", tmp / "pred.jsonl"

    def check(rc: int, err: str, expect_ok: bool) -> str:
        if expect_ok and rc != 0:
            raise Broken(f"exit {rc}: {err[:200]}")
        if rc == 0:
            return "handled"
        if rc != 2 or not err.startswith("labkit: error:") or err.rstrip("\n").count("\n"):
            raise Broken(f"exit {rc} without one clear error line: {err[:300]}")
        return "refused"

    def score(label: str, rec: dict[str, Any], body: str | bytes, *, expect_ok: bool, process: bool = False,
              target: Path | None = None) -> None:
        """One ``labkit score`` run over a one-record benchmark and its predictions ``body``."""
        bench.write_text(dumps_line(rec), encoding="utf-8")
        preds.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
        for compat in ([], ["--compat", "kagentbench"]):
            argv = ["score", str(bench), str(target or preds), *compat]
            with t.case(f"{label} / {rec['type']}{' / compat' if compat else ''}{' / process' if process else ''}") \
                    as c:
                if process:
                    proc = subprocess.run([sys.executable, "-m", "labkit.cli", *argv], capture_output=True,
                                          text=True, errors="replace", cwd=ROOT, timeout=600,
                                          env={**os.environ, "PYTHONPATH": str(ROOT)})
                    c.outcome = check(proc.returncode, proc.stderr, expect_ok)
                    continue
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    rc = main(argv)  # a raise here is a traceback
                c.outcome = check(rc, err.getvalue(), expect_ok)

    for label, text in _scorer_texts(mb, quick):
        for rec, pred in zip(records, _hostile_predictions(records, text)):
            score(f"output: {label}", rec, dumps_line(pred), expect_ok=True)
    rec = records[0]
    line = dumps_line(_hostile_predictions([rec], "x")[0])
    files: dict[str, str | bytes] = {
        "200k-deep JSON line": "[" * 200_000 + "]" * 200_000 + "\n",
        "5,000-digit integer": line[:-2] + ', "n": ' + "9" * 5000 + "}\n",
        "NUL byte in a key": line.replace('"id"', '"i\x00d"', 1),
        "lone surrogate": line[:-2] + ', "s": "\ud800"}\n',
        "5 MB line": line[:-2] + ', "s": ' + json.dumps("a" * int(mb * 1e6)) + "}\n",
        "invalid UTF-8": line.encode() + b'{"a": "\xff"}\n',
        "empty file": "",
        "whitespace file": " \n\t\n",
        "truncated JSON line": line[: len(line) // 2],
    }
    for label, bad in list(files.items())[:3 if quick else None]:
        score(f"file: {label}", rec, bad, expect_ok=False)
    score("file: a folder as the predictions", rec, "", expect_ok=False, target=tmp)
    for label in list(files)[:0 if quick else 3]:  # the real entry point: its own process, its own stderr
        score(f"file: {label}", rec, files[label], expect_ok=False, process=True)


def _template_files(mb: float) -> dict[str, str | bytes]:
    """Hostile template files: YAML alias bombs, recursion and deep nesting, huge numbers, NUL, lone surrogates,
    invalid UTF-8, empty, truncated, and Jinja render bombs."""
    import yaml

    from labkit.templates import template_yaml

    valid = {"name": "fz", "family": "meta", "kind": "planning", "output_format": "task_json", "lang": "en",
             "sections": ["profile", "instruction", "tools", "goal", "memory", "format"], "description": "d",
             "source": "s", "template": "You are a planner. Rules: use only the tools.\n{{ tools_block }}\n"
                                        "Goal: {{ goal }}\nDone: {{ memory_block }}\n"
                                        'Reply JSON: {"task_name": "..", "command": {"name": ".."}}\n'}
    names = [chr(97 + i) for i in range(9)]
    bomb = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x]"] + [
        f"&{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip(names, names[1:])]) + "]"
    text = yaml.safe_dump(valid)
    files: dict[str, str | bytes] = {}
    for field in ("sections", "family", "name", "description", "output_format", "lang"):
        files[f"YAML alias bombs / in {field}"] = yaml.safe_dump({k: v for k, v in valid.items() if k != field}) + \
            f"{field}: {bomb}\n"
    files["YAML alias bombs / in a format label"] = yaml.safe_dump({**valid, "output_format": "kv_fz"}) + \
        "format: {style: kv, fields: {thought: " + bomb + ", tool: t, args: a, answer: r}}\n"
    files["YAML alias bombs / recursive alias"] = text.replace("sections:", "x: &r [*r]\nsections:", 1)
    files["deep nesting / 500-deep YAML"] = "name: " + "[" * 500 + "]" * 500 + "\n"
    files["deep nesting / 100k-deep YAML"] = "name: " + "[" * 100_000 + "]" * 100_000 + "\n"
    files["deep nesting / 2,000-deep block mapping"] = "".join(" " * i + "a:\n" for i in range(2000)) + "\n"
    files["huge numbers / 5,000-digit integer"] = text.replace("lang: en", "lang: " + "9" * 5000)
    files["huge numbers / 1e400"] = text.replace("lang: en", "lang: 1e400")
    files["5 MB strings / 5 MB file"] = "name: " + "a" * int(mb * 1e6) + "\n"
    files["NUL / NUL in YAML"] = text + "x: \x00\n"
    files["lone surrogates / in the name"] = text.replace("name: fz", 'name: "\\ud800"')
    files["invalid UTF-8 / 0xff byte"] = text.encode() + b"x: \xff\n"
    files["empty or whitespace / empty file"] = ""
    files["empty or whitespace / whitespace file"] = " \n\t\n"
    files["truncated / half a file"] = text[: len(text) // 2]
    jinja = {
        "self-calling macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "'a' * 200000 in a loop": "{% for i in range(100000) %}{{ 'a' * 200000 }}{% endfor %}",
        "center(2*10**9)": "{{ 'x'.center(2 * 10 ** 9) }}",
        "ljust(2*10**9)": "{{ 'x'.ljust(2 * 10 ** 9) }}",
        "format width": "{{ '{:>2000000000}'.format('x') }}",
        "% width": "{{ '%2000000000s' % 'x' }}",
        "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "join bomb": "{{ range(100000)|join('a' * 200000) }}",
        "set-block accumulation": "{% set x %}{% for i in range(100000) %}{{ ('a' * 150000) ~ i }}{% endfor %}"
                                  "{% endset %}{{ x|length }}",
        "doubling macro": "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}"
                          "{% endmacro %}{{ d('a', 40) }}",
        "power tower": "{{ (((2 ** 64) ** 64) ** 64) ** 64 }}",
        "round(1, -10**8)": "{{ 1|round(-10 ** 8) }}",
        "printing shared references": "{% set l = ['a' * 1000] * 200000 %}{{ l }}",
        "deep parentheses": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    }
    for label, body in jinja.items():
        files[f"render bombs / {label}"] = template_yaml({**valid, "template": valid["template"] + body})
    return files


def run_templates(t: Tally, mb: float, quick: bool = False) -> None:
    """``load_template`` + ``render`` of hostile template files (a ``DataFileError`` naming the file is the clean
    refusal; loading one is a broken promise), then a valid template rendered with hostile values as the goal, a
    completed task's arguments and result, and the knowledge."""
    from labkit.templates import load_template
    from labkit.tools import default_registry
    from labkit.types import CompletedTask, ToolCall

    may_load = {"lone surrogates / in the name"}  # a valid file whose name holds a lone surrogate: loading it is fine
    tmp = scratch("fuzz_tpl_")
    items = list(_template_files(mb).items())
    for label, body in (items[::4] if quick else items):
        path = tmp / "fz.yaml"
        path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
        with t.case(label):
            load_template(path).render(goal="g", tools=[])
            if label not in may_load:
                raise Broken("a hostile template file loaded")
    tools = default_registry().subset(["web_search", "calculator"])
    templates = [load_template(n) for n in ("kagent_planning_zh", "react", "kagent_conclusion_zh")]
    for family, name, make in py_values(mb, quick):
        value = make()
        text = value if isinstance(value, str) else "x"
        memory = [CompletedTask(task_name=text, call=ToolCall("web_search", {"query": value}), result=text)]
        for tmpl in templates:
            with t.case(f"{family} / {name} / render {tmpl.name}"):
                prompt = tmpl.render(goal=text, tools=tools, memory=memory, knowledge=text)
                if len(prompt) > MAX_PROMPT + 2 * len(text):
                    raise Broken(f"a prompt of {len(prompt)} characters")
        del value


RUNNERS: dict[str, Callable[..., None]] = {
    "parsers": run_parsers, "json": run_json, "files": run_files, "templates": run_templates, "scorer": run_scorer,
    "agent": run_agent, "tools": run_tools, "cli": run_cli}


def child(target: str, mb: float, quick: bool, out: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))
    tally = Tally(target)
    RUNNERS[target](tally, mb, quick)
    Path(out).write_text(json.dumps(tally.summary(), ensure_ascii=False), encoding="utf-8")


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | inputs | handled / failed / refused | **exceptions** | slowest case, CPU s (which) | "
             "slowest case, wall s | cases ≥ 2 s (CPU / wall) | peak RSS of a case (which) | RSS before the cases | "
             "cases ≥ 512 MB | CPU s in all |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "inputs" not in r:
            lines.append(f"| {r['target']} | the process died (exit {r['crashed']}) | | | | | | | | | |")
            continue
        lines.append(f"| {r['target']} | {r['inputs']:,} | {r['handled']:,} / {r['failed']:,} / {r['refused']:,} | "
                     f"**{r['exceptions']}** | {r['slowest_cpu_s']:.2f} ({r['slowest_cpu_case']}) | "
                     f"{r['slowest_wall_s']:.2f} | {r['over_2s_cpu']} / {r['over_2s_wall']} | "
                     f"{r['peak_case_mb']:.0f} MB ({r['peak_case']}) | {r['baseline_mb']:.0f} MB | {r['over_512mb']} | "
                     f"{r['cpu_s']:.0f} |")
    return "\n".join(lines)


def run_target(target: str, mb: float, quick: bool) -> dict[str, Any]:
    """One target in its own process: its summary row, or why the process died."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", target, "--mb", str(mb), "--out", out,
                           *(["--quick"] if quick else [])], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"target": target, "crashed": proc.returncode, "stderr": proc.stderr[-2000:]}
    row = json.loads(Path(out).read_text(encoding="utf-8"))
    os.unlink(out)
    row["target_wall_s"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=5.0, help="size of the long strings in MB (default 5)")
    ap.add_argument("--quick", action="store_true", help="two values of each family (a smoke run, as the test)")
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--jobs", type=int, default=1, help="target processes side by side (default 1)")
    ap.add_argument("--record", default="fuzz_hostile", help="runs/bench/<RECORD>.json (default fuzz_hostile)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mb, args.quick, args.out)
        return
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:  # each target is its own process; CPU seconds are per case
        futures = [pool.submit(run_target, target, args.mb, args.quick) for target in args.targets]
        rows = []
        for future in as_completed(futures):
            rows.append(future.result())
            report(rows[-1])
    rows.sort(key=lambda r: args.targets.index(r["target"]))
    print()
    print(table(rows))
    path = record.save(args.record, {"mb": args.mb, "quick": args.quick, "jobs": args.jobs, "rows": rows,
                                        "wall_s": round(time.perf_counter() - start, 1),
                                        "command": " ".join(sys.argv)})
    print(f"\nraw figures: {path}")


def report(row: dict[str, Any]) -> None:
    if "inputs" not in row:
        print(f"{row['target']}: the process died (exit {row['crashed']})\n{row['stderr']}", file=sys.stderr)
        return
    print(f"{row['target']}: {row['inputs']} inputs ({row['handled']} handled, {row['failed']} failed, "
          f"{row['refused']} refused), {row['exceptions']} exceptions, slowest {row['slowest_cpu_s']} s CPU "
          f"({row['slowest_cpu_case']}) / {row['slowest_wall_s']} s wall, peak {row['peak_case_mb']} MB RSS "
          f"({row['peak_case']}), {row['cpu_s']} s CPU in all", flush=True)
    for failure in row["failures"]:
        print(f"    {failure}", flush=True)


if __name__ == "__main__":
    main()
