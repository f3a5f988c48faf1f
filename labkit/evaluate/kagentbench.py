"""The official KAgentBench scoring rules, restated: how ``benchmark/benchmark_eval.py`` (KwaiKEG/KwaiAgents, latest
commit) reads and scores a predictions file.

Written from reading that script and checking it by running it; none of its code is copied (its licence is
CC BY-NC-SA 4.0). The scorer's compatibility mode (``score_predictions(..., compat="kagentbench")``) is these rules
with every labkit switch off; labkit's own mode adds the rules listed in :mod:`labkit.evaluate.differences`.

What the script does:

* **Records.** Eval and prediction lines are grouped by their ``type`` (``plantooluse``, ``reflextion``,
  ``conclusion``, ``profile``; other types are ignored) and joined by ``id``; each type must have as many predictions
  as eval records. The records scored are the *prediction* lines, in file order; a repeated id keeps its first
  position and its last line.
* **Templates.** Each key of the prediction's ``model_predict`` is one template; the eval's ``prompt_input`` is never
  read. The key picks the parser: ``ReACT``, ``AutoGPT``, ``ToolLlama``, ``ModelScope``, ``KuaiAgent``. An empty
  ``ReACT`` output and any other key (``Kuaiagent`` too) reuse the previous template's parse.
* **JSON** (AutoGPT, KuaiAgent, ModelScope's think block, ToolLlama's ``Action Input``): while the text has more
  ``{`` than ``}``, right-strip newlines and append ``"\\n}"``; unless that added 5 or more, keep the span from the
  first ``{`` to the last ``"}\\n}"`` when both exist (so compact JSON keeps any prose around it). Then, if
  ``json.loads`` fails: on an "Invalid \\escape" error delete the character at the error position until it loads or
  the error changes (labkit stops after 100 deletions); on "Expecting property name enclosed in double quotes" quote
  every ``word:`` (URLs too) and give up unless that loads; else add missing ``}`` / strip surplus trailing ``}`` and
  keep that if it loads. The result must be a JSON object, else the parse is the default.
* **Fields.** Default parse: thought ``'None'``, tool ``'None'``, args ``{}``; an empty tool name becomes ``'None'``
  (an empty thought stays ``''``). KuaiAgent: thought ``task_name``, tool ``command.name``, args ``command.args`` when
  an object. AutoGPT: thought ``thoughts.text``, the same command fields. ModelScope: the first
  ``<|startofthink|>…<|endofthink|>`` block, tool ``api_name``, args ``parameters``; the thought is never set.
  Values keep their JSON type (a ``null`` thought is scored as the text ``"None"``).
* **ReACT.** Thought: the text before the first ``Action`` or ``Final Answer`` anywhere (case-sensitive, the
  ``Thought:`` label kept), stripped. Tool: between the first ``Action:`` and the next ``Action Input:``, stripped.
  Args: ``{first declared property of that tool in funcs: the text after the first "Action Input:" up to
  "Observation" or the end, stripped}``; no args when the tool is not in ``funcs`` (the last entry of that name wins).
* **ToolLlama.** Thought: after the first ``Thought:`` up to ``Action`` or the end; with no ``Thought:`` it is the
  empty *list*, scored as the text ``"[]"``. Tool: after ``Action:`` up to ``Action Input:`` or the end. Args: the text
  after ``Action Input:`` up to ``Thought`` or the end, read as JSON (above). ``Finish`` is an ordinary tool name.
* **ROUGE.** ``str()`` of both sides; ``''`` scores 0; else ``nltk.word_tokenize``, tokens holding a Unicode ``Lo``
  character split into characters, joined by spaces, rouge-chinese ROUGE-L ``f`` (with its +1e-8).
* **Metrics** per template, over golden items whose ``thought`` / ``tool_name`` is not the string ``'None'``:
  Planning ``max EM·ROUGE(thought)``; Tool-use ``max EM·ArgScore`` (golden items need only ``tool_name``);
  Reflection ``max (1−P)(0.3·EM·ROUGE + 0.7·EM·ArgScore)``, P = 1 when ``memory_last_task`` has the golden tool name
  and args. ArgScore: both ``{}`` → 1; prediction ``{}`` → 0; else the mean over golden keys of ROUGE(golden value,
  predicted value) or 0 for a missing key (a golden ``{}`` with predicted args: empty mean → 0). No eligible golden
  item: 0 (Reflection: ``max([])`` raises).
* **Conclusion.** Per template: ``AutoGPT`` outputs containing ``web_search(`` become ``''``; otherwise the text
  between the first and second ``response="`` with every ``")`` removed. ``ToolLlama``: the text between the first and
  second ``"final_answer": "`` with every ``"`` and ``}`` removed; a lone ``"\\n"`` becomes ``''``. ``''`` scores 0, a
  dict is ``json.dumps``-ed, else max ROUGE over the golden answers. **Profile**: ``model_predict`` itself, same rule.
* **Aggregation.** Each ability is the mean over records of the mean over that record's templates; Overall =
  0.25·Planning + 0.35·Tool-use + 0.1·Reflection + 0.2·Concluding + 0.1·Profile; printed ×100 with 2 decimals.

Where the script stops with an error, compat mode scores 0 instead and records a note (:data:`CRASH_POINTS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.records import BenchmarkRecord

NONE = "None"
PARSER_KEYS: tuple[str, ...] = ("ReACT", "AutoGPT", "ToolLlama", "ModelScope", "KuaiAgent")
# labkit output formats -> the official parser that reads them (used for labkit's own template names)
FORMAT_PARSERS: dict[str, str] = {"react": "ReACT", "autogpt": "AutoGPT", "toolllama": "ToolLlama",
                                  "modelscope": "ModelScope", "task_json": "KuaiAgent", "conclusion": "conclusion"}
WEIGHTS: tuple[tuple[str, float], ...] = (("Planning", 0.25), ("Tool-use", 0.35), ("Reflection", 0.1),
                                          ("Concluding", 0.2), ("Profile", 0.1))
LINE_NAMES: tuple[tuple[str, str], ...] = (("plan", "Planning"), ("tooluse", "Tool-use"),
                                           ("reflextion", "Reflection"), ("conclusion", "Concluding"),
                                           ("profile", "Profile"))

# code -> (where the official script raises, what labkit does instead)
CRASH_POINTS: dict[str, tuple[str, str]] = {
    "empty_tokens": ("a non-empty text with no tokens (e.g. whitespace only): rouge-chinese raises 'Hypothesis is "
                     "empty'", "that ROUGE scores 0"),
    "no_golden": ("max() over no golden item: Reflection with no eligible item, a conclusion/profile record with no "
                  "golden answer", "that template scores 0"),
    "parser_error": ("the parser itself raises: a ReACT output that is not text, a 'command'/'thoughts' that is a "
                     "string containing 'name'/'text', a number or null", "the template gets the default parse (0)"),
    "no_previous_parse": ("an empty ReACT output or an unknown template key comes first, so there is no previous "
                          "parse to reuse (UnboundLocalError)", "the template gets the default parse (0)"),
    "no_templates": ("a record with no template output to average over (ZeroDivisionError)", "the record scores 0"),
    "bad_last_task": ("memory_last_task without tool_name / tool_args, or not an object (KeyError)",
                      "that golden item scores 0"),
    "bad_golden_args": ("golden tool_args that are not an object while the prediction has args (AttributeError)",
                        "that golden item scores 0"),
    "bad_output_type": ("a conclusion output the cleaning cannot handle (null or a number for AutoGPT/ToolLlama; "
                        "model_predict that is not an object)", "that template / record scores 0"),
    "missing_dimension": ("no record of a type: the mean over no records (ZeroDivisionError)",
                          "the ability and Overall are n/a (None)"),
}


class OfficialCrash(Exception):
    """The official script would stop with an error here; ``code`` is a key of :data:`CRASH_POINTS`."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class Prediction(BenchmarkRecord, total=False):
    """One line of a predictions file (``predictions.jsonl``, the official ``--pred`` file): the benchmark record
    plus ``model_predict``, template -> output text (a profile record: the one output text). labkit's runner adds
    ``model_id`` (who answered). A file from elsewhere may hold other JSON values as outputs; they are scored as
    ``str()`` of the value, as the official script does."""

    model_predict: dict[str, str] | str
    model_id: str


@dataclass
class Step:
    """One parsed planning output as the official script sees it (+ the raw ``Action Input`` text for labkit rules)."""

    thought: Any = NONE
    tool_name: Any = NONE
    tool_args: dict[str, Any] = field(default_factory=dict)
    action_input: str | None = None


# ---------------------------------------------------------------- JSON, the official way

def _balance_by_appending(text: str) -> tuple[str, int]:
    missing = text.count("{") - text.count("}")
    if missing <= 0:
        return text, 0
    return text.rstrip("\n") + "\n}" * missing, missing


def find_json_span(text: str) -> str:
    """Close unbalanced braces, then cut from the first '{' to the last '}\\n}' (see the module doc)."""
    text, added = _balance_by_appending(text)
    if added >= 5:
        return text
    start, end = text.find("{"), text.rfind("}\n}")
    if start == -1 or end == -1:
        return text
    return text[start:end + 3].strip()


_CHAR_POS = re.compile(r"\(char (\d+)\)")
_BARE_NAME = re.compile(r"(\w+):")


MAX_ESCAPE_DROPS = 100  # the script drops one bad escape per json.loads: 500,000 of them would take hours


def _drop_bad_escapes(text: str, message: str) -> str:
    """The script's loop, at most :data:`MAX_ESCAPE_DROPS` times: a text with more stray backslashes is left with
    the rest of them (it fails to load: the default parse), where the script would spend hours on a long output
    dropping them one ``json.loads`` at a time."""
    for _ in range(MAX_ESCAPE_DROPS):
        if not message.startswith("Invalid \\escape"):
            break
        pos = int(_CHAR_POS.search(message).group(1))  # type: ignore[union-attr]  # json always names the char
        text = text[:pos] + text[pos + 1:]
        try:
            json.loads(text)
            return text
        except json.JSONDecodeError as exc:
            message = str(exc)
    return text


def _balance_braces(text: str) -> str | None:
    opened, closed = text.count("{"), text.count("}")
    if opened > closed:
        text += "}" * (opened - closed)
    while closed > opened:  # strips every trailing '}' each round, as the script does
        text = text.rstrip("}")
        closed -= 1
    try:
        json.loads(text)
        return text
    except json.JSONDecodeError:
        return None


def repair_json_text(text: str) -> str:
    """The official repair chain on one JSON candidate (may raise json.JSONDecodeError, like the script)."""
    try:
        json.loads(text)
        return text
    except json.JSONDecodeError as exc:
        message = str(exc)
    if message.startswith("Invalid \\escape"):
        text = _drop_bad_escapes(text, message)
    if message.startswith("Expecting property name enclosed in double quotes"):
        quoted = _BARE_NAME.sub(r'"\1":', text)
        json.loads(quoted)  # raises when quoting did not help: the caller then gives up
        return quoted
    balanced = _balance_braces(text)
    return balanced if balanced else text


def read_json(text: Any) -> dict[str, Any] | None:
    """The JSON object the official script reads from ``text``, or None where it falls back to the default parse."""
    try:
        value = json.loads(repair_json_text(find_json_span(text)))
    except Exception:  # noqa: BLE001 - the script catches everything here (non-text input included)
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------- fields of the JSON formats

def _contains(container: Any, key: str, what: str) -> bool:
    try:
        return key in container
    except TypeError:
        raise OfficialCrash("parser_error", f"{what} is {type(container).__name__}: `{key!r} in` raises") from None


def _item(container: Any, key: str, what: str) -> Any:
    try:
        return container[key]
    except (TypeError, KeyError, IndexError):
        raise OfficialCrash("parser_error", f"{what} is {type(container).__name__}: [{key!r}] raises") from None


def _object_args(command: Any) -> dict[str, Any]:
    try:
        args = command["args"]
    except Exception:  # noqa: BLE001 - inside the script's try block
        return {}
    return args if isinstance(args, dict) else {}


def _finish(step: Step) -> Step:
    if step.tool_name == "":
        step.tool_name = NONE
    return step


def kuaiagent_fields(obj: Mapping[str, object] | None) -> Step:
    """The KuaiAgent fields of a parsed output (see the module doc), read as tolerantly as the script reads them."""
    step = Step()
    if obj is None:
        return step
    if "task_name" in obj:
        step.thought = obj["task_name"]
    if obj and "command" in obj:
        command = obj["command"]
        if _contains(command, "name", "command"):
            step.tool_name = _item(command, "name", "command")
        if _contains(command, "args", "command"):
            step.tool_args = _object_args(command)
    return _finish(step)


def autogpt_fields(obj: Mapping[str, object] | None) -> Step:
    """The AutoGPT fields of a parsed output (see the module doc)."""
    step = Step()
    if obj is None:
        return step
    thoughts = obj.get("thoughts") if "thoughts" in obj else None
    if thoughts and _contains(thoughts, "text", "thoughts"):
        step.thought = _item(thoughts, "text", "thoughts")
    command = obj.get("command") if "command" in obj else None
    if command and _contains(command, "name", "command"):
        step.tool_name = _item(command, "name", "command")
    if command and _contains(command, "args", "command"):
        step.tool_args = _object_args(command)
    return _finish(step)


def modelscope_fields(obj: Mapping[str, object] | None) -> Step:
    """The ModelScope fields of a parsed think block (see the module doc)."""
    step = Step()
    if not obj:
        return step
    if "api_name" in obj:
        step.tool_name = obj["api_name"]
    parameters = obj.get("parameters")
    if isinstance(parameters, dict):
        step.tool_args = parameters
    return _finish(step)


# ---------------------------------------------------------------- the five parsers

_THINK_BLOCK = re.compile(r"<\|startofthink\|>(.+?)<\|endofthink\|>", re.DOTALL)
_REACT_THOUGHT = re.compile(r"(.+?)(?=Final Answer|Action|\Z)", re.DOTALL)
_REACT_TOOL = re.compile(r"Action:(.+?)Action Input:", re.DOTALL)
_REACT_INPUT = re.compile(r"Action Input:(.+?)(?=Observation|\Z)", re.DOTALL)
_LLAMA_THOUGHT = re.compile(r"Thought:(.+?)(?=\Z|Action)", re.DOTALL)
_LLAMA_TOOL = re.compile(r"Action:(.+?)(?=Action Input:|\Z)", re.DOTALL)
_LLAMA_INPUT = re.compile(r"Action Input:(.+?)(?=Thought|\Z)", re.DOTALL)


def first_property(tool_name: Any, funcs: Iterable[Any]) -> str:
    """The ReACT argument key: the first declared property of the last ``funcs`` entry with that name, else 'None'."""
    key = NONE
    try:
        entries = list(funcs)
    except TypeError:
        raise OfficialCrash("parser_error", "funcs is not a list") from None
    for func in entries:
        if _item(func, "name", "a funcs entry") == tool_name:
            try:
                key = list(func["parameters"]["properties"].keys())[0]
            except Exception:  # noqa: BLE001 - the script's bare except
                key = NONE
    return key


def parse_react(text: Any, funcs: Iterable[Any]) -> Step:
    if not isinstance(text, str):
        raise OfficialCrash("parser_error", f"a ReACT output that is {type(text).__name__}")
    step = Step(thought=_REACT_THOUGHT.search(text).group(1).strip() if text else "")
    tool = _REACT_TOOL.search(text)
    given = _REACT_INPUT.search(text)
    step.action_input = given.group(1).strip() if given else None
    if tool is not None:
        step.tool_name = tool.group(1).strip()
        key = first_property(step.tool_name, funcs)
        if key != NONE and given is not None:
            step.tool_args = {key: step.action_input}
    return _finish(step)


def parse_toolllama(text: Any) -> Step:
    step = Step()
    if not isinstance(text, str):
        return step  # the script's try block swallows the TypeError
    thought = _LLAMA_THOUGHT.search(text)
    step.thought = thought.group(1).strip() if thought else []
    tool = _LLAMA_TOOL.search(text)
    if tool is not None:
        step.tool_name = tool.group(1).strip()
        given = _LLAMA_INPUT.search(text)
        if given is not None:
            step.action_input = given.group(1).strip()
            step.tool_args = read_json(step.action_input) or {}
    return _finish(step)


def think_block(text: Any) -> str | None:
    """The stripped text of the first complete ModelScope think block, None when there is none."""
    if not isinstance(text, str):
        raise OfficialCrash("parser_error", f"a ModelScope output that is {type(text).__name__}")
    block = _THINK_BLOCK.search(text)
    return block.group(1).strip() if block else None


def parse_modelscope(text: Any) -> Step:
    inner = think_block(text)
    return Step() if inner is None else modelscope_fields(read_json(inner))


def parse_autogpt(text: Any) -> Step:
    return autogpt_fields(read_json(text))


def parse_kuaiagent(text: Any) -> Step:
    return kuaiagent_fields(read_json(text))


PARSERS: dict[str, Callable[[Any, Iterable[Any]], Step]] = {
    "ReACT": parse_react,
    "AutoGPT": lambda text, funcs: parse_autogpt(text),
    "ToolLlama": lambda text, funcs: parse_toolllama(text),
    "ModelScope": lambda text, funcs: parse_modelscope(text),
    "KuaiAgent": lambda text, funcs: parse_kuaiagent(text),
}


def reuses_previous(parser: str | None, text: Any) -> bool:
    """True where the script keeps the previous template's parse: an empty ReACT output, or no parser for the key."""
    return parser not in PARSERS or (parser == "ReACT" and text == "")


# ---------------------------------------------------------------- metrics

Similarity = Callable[[Any, Any], float]  # (golden/label, prediction) -> ROUGE-L F


def eligible(golden: Iterable[Mapping[str, Any]], *, need_thought: bool) -> list[Mapping[str, Any]]:
    return [g for g in golden if g.get("tool_name", NONE) != NONE
            and not (need_thought and g.get("thought", NONE) == NONE)]


def arg_score(gold: Any, pred: dict[str, Any], rouge: Similarity, *, empty_gold_matches: bool = False) -> float:
    """Mean ROUGE over the golden keys (0 for a missing key); both empty -> 1; empty prediction -> 0.

    ``empty_gold_matches`` (labkit): a golden call without arguments is matched by any predicted arguments.
    """
    if gold == {} and (pred == {} or empty_gold_matches):
        return 1.0
    if pred == {}:
        return 0.0
    if not isinstance(gold, dict):
        raise OfficialCrash("bad_golden_args", f"golden tool_args is {type(gold).__name__}")
    scores = [rouge(value, pred[key]) if key in pred else 0.0 for key, value in gold.items()]
    return sum(scores) / len(scores) if scores else 0.0


def _em(g: Mapping[str, Any], step: Step) -> int:
    return 1 if step.tool_name == g.get("tool_name") else 0


def plan_metric(golden: Iterable[Mapping[str, Any]], step: Step, rouge: Similarity) -> float:
    return max([rouge(g.get("thought"), step.thought) * _em(g, step) for g in eligible(golden, need_thought=True)]
               or [0.0])


def tool_metric(golden: Iterable[Mapping[str, Any]], step: Step, rouge: Similarity, *,
                empty_gold_matches: bool = False) -> float:
    return max([arg_score(g.get("tool_args", {}), step.tool_args, rouge, empty_gold_matches=empty_gold_matches)
                * _em(g, step) for g in eligible(golden, need_thought=False)] or [0.0])


def repeats_last_task(g: Mapping[str, Any], last_task: Any) -> bool:
    """P_g: the golden item repeats ``memory_last_task`` (same tool name and args)."""
    try:
        return last_task["tool_name"] == g.get("tool_name") and last_task["tool_args"] == g.get("tool_args")
    except (KeyError, TypeError, IndexError):
        raise OfficialCrash("bad_last_task", f"memory_last_task {last_task!r:.80} lacks tool_name/tool_args") from None


def reflection_metric(golden: Iterable[Mapping[str, Any]], step: Step, last_task: Any, rouge: Similarity, *,
                      empty_gold_matches: bool = False, on_crash: Callable[[OfficialCrash], None] | None = None
                      ) -> float:
    """Best (1-P)(0.3·EM·ROUGE + 0.7·EM·ArgScore); a golden item whose scoring crashes scores 0 (via ``on_crash``)."""
    scores = []
    for g in eligible(golden, need_thought=True):
        try:
            thought = rouge(g.get("thought"), step.thought)
            em = _em(g, step)
            args = arg_score(g.get("tool_args", {}), step.tool_args, rouge, empty_gold_matches=empty_gold_matches)
            penalty = 1 if repeats_last_task(g, last_task) else 0
            scores.append((1 - penalty) * (0.3 * em * thought + 0.7 * em * args))
        except OfficialCrash as crash:
            if on_crash is None:
                raise
            on_crash(crash)
            scores.append(0.0)
    if not scores:
        raise OfficialCrash("no_golden", "no golden item with a thought and a tool (max of an empty list)")
    return max(scores)


# ---------------------------------------------------------------- conclusion and profile

AUTOGPT_SEARCH = "web_search("  # an AutoGPT conclusion that searches again: no answer
AUTOGPT_RESPONSE = 'response="'  # where an AutoGPT conclusion's answer starts
TOOLLLAMA_ANSWER = '"final_answer": "'  # where a ToolLlama conclusion's answer starts


def unquote_toolllama(answer: str) -> str:
    """The official ToolLlama answer cleaning: the quotes and braces of its ``Finish`` JSON dropped (shared with
    labkit's reader, :func:`labkit.evaluate.scorer.read_conclusion`)."""
    return answer.replace('"', "").replace("}", "")



def clean_conclusion(parser: str | None, output: Any) -> Any:
    """The official per-template cleaning of a concluding output (AutoGPT and ToolLlama only)."""
    try:
        if parser == "AutoGPT":
            if AUTOGPT_SEARCH in output:
                output = ""
            if AUTOGPT_RESPONSE in output:
                output = output.split(AUTOGPT_RESPONSE)[1].replace('")', "")
        elif parser == "ToolLlama":
            if TOOLLLAMA_ANSWER in output:
                output = unquote_toolllama(output.split(TOOLLLAMA_ANSWER)[1])
            if output == "\n":
                output = ""
    except (TypeError, AttributeError):
        raise OfficialCrash("bad_output_type", f"a {parser} conclusion output that is {type(output).__name__}") \
            from None
    return output


def answer_text(output: Any) -> Any:
    """What ROUGE sees for a cleaned answer: a dict becomes its ``json.dumps`` text, anything else stays (str() later)."""
    return json.dumps(output, ensure_ascii=False) if isinstance(output, dict) else output


def best_answer_score(output: Any, golden: list[Any], rouge: Similarity) -> float:
    """0 for ``''``; else the best ROUGE against the golden answers (no golden answer: the script's max([]) raises)."""
    if output == "":
        return 0.0
    if not golden:
        raise OfficialCrash("no_golden", "no golden answer (max of an empty list)")
    return max(rouge(label, output) for label in golden)


def golden_answers(record: Mapping[str, Any]) -> list[Any]:
    return [g.get("golden_result") if isinstance(g, Mapping) else g for g in record.get("golden_result_list") or []]


# ---------------------------------------------------------------- aggregation and the printed line

def mean(values: list[float]) -> float:
    """sum / len, in order (the script's float arithmetic; callers handle the empty case)."""
    return sum(values) / len(values)


def overall(means: Mapping[str, float]) -> float:
    """0.25·Planning + 0.35·Tool-use + 0.1·Reflection + 0.2·Concluding + 0.1·Profile, summed in that order."""
    total = 0.0
    for i, (name, weight) in enumerate(WEIGHTS):
        total = weight * means[name] if i == 0 else total + weight * means[name]
    return total


def format_line(percent: Mapping[str, float | None], overall_percent: float | None) -> str:
    """The script's closing line, ``plan : X, tooluse : X, ..., overall : X`` (n/a where a value is missing)."""
    show = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    parts = [f"{name} : {show(percent.get(dim))}" for name, dim in LINE_NAMES]
    return ", ".join([*parts, f"overall : {show(overall_percent)}"])


# ---------------------------------------------------------------- writing files the official script can read

def to_official_layout(records: Iterable[BenchmarkRecord], predictions: Iterable[Prediction]
                       ) -> tuple[list[BenchmarkRecord], list[Prediction]]:
    """Benchmark + predictions with labkit template names -> (eval lines, prediction lines) keyed the official way.

    Each template is renamed to the parser that reads its output format (``react`` -> ``ReACT``, ``task_json`` ->
    ``KuaiAgent``; conclusion templates: ``AutoGPT`` / ``ToolLlama`` / ``KuaiAgent``). Two templates of one record that
    get the same name are split into copies of the record (ids ``<id>``, ``<id>#2``, ...), so every template output is
    still scored once; per-template values stay the same, a split record counts once per copy in the means.
    """
    preds = {str(p["id"]): p for p in predictions}
    eval_out: list[BenchmarkRecord] = []
    pred_out: list[Prediction] = []
    for rec in records:
        rid, typ = str(rec["id"]), rec["type"]
        predict = preds[rid].get("model_predict")
        if typ == "profile":
            eval_out.append(dict(rec))
            pred_out.append({**rec, "model_predict": predict})
            continue
        formats = rec.get("output_formats") or {}
        copies: list[dict[str, str]] = []  # template -> output, one official template name each
        for template, output in (predict or {}).items():
            name = template if template in PARSER_KEYS else FORMAT_PARSERS.get(formats.get(template, ""), template)
            if typ == "conclusion" and name not in ("AutoGPT", "ToolLlama"):
                name = "KuaiAgent"
            slot = next((c for c in copies if name not in c), None)
            if slot is None:
                slot = {}
                copies.append(slot)
            slot[name] = output
        for i, outputs in enumerate(copies or [{}]):
            cid = rid if i == 0 else f"{rid}#{i + 1}"
            base = {k: v for k, v in rec.items() if k not in ("output_formats", "template_tags", "model_predict")}
            eval_out.append({**base, "id": cid, "prompt_input": {k: "" for k in outputs}})
            pred_out.append({**base, "id": cid, "prompt_input": {k: "" for k in outputs}, "model_predict": outputs})
    return eval_out, pred_out
