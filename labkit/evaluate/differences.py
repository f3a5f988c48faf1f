"""Every way labkit's own scoring differs from the official KAgentBench script, in one table, each one a switch.

labkit's own mode (the default) is the official rules (:mod:`labkit.evaluate.kagentbench`) with every switch in
:data:`DIFFERENCES` on; ``compat="kagentbench"`` turns them all off. Any mix can be scored with
``score_predictions(..., options=ScoringOptions.official().with_(tolerant_json=True))``. There is no other difference:
the two modes share one scoring pipeline. Where the official script stops with an error, both modes score 0 and
record a note instead (:data:`labkit.evaluate.kagentbench.CRASH_POINTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict


@dataclass(frozen=True)
class Difference:
    flag: str      # the ScoringOptions field
    area: str      # parsing | answers | templates | scoring | aggregation
    labkit: str    # what labkit does when the switch is on
    official: str  # what benchmark_eval.py does (switch off)
    why: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference("cut_end_markers", "parsing",
               "an output is cut at the first <end_of_turn>, <eos>, <start_of_turn> or </s>",
               "the whole text is read, markers and anything after them included",
               "a chat model's end-of-turn marker (and an invented next turn) is not part of its answer"),
    Difference("tolerant_json", "parsing",
               "JSON the official repair chain cannot read is read by labkit.parsing: code fences, prose around "
               "the JSON, truncation and quoting slips fixed by json_repair, a list holding the object",
               "brace balancing, escape and key-quoting fixes only; compact JSON with prose or fences around it, or "
               "a list, gives the default parse",
               "small models wrap correct calls in fences and prose; the call is still correct"),
    Difference("lenient_markers", "parsing",
               "ReAct/ToolLlama markers match in any case and with spaces before the colon ('action :', "
               "'ACTION INPUT:')",
               "exactly 'Action:', 'Action Input:', 'Thought:', 'Final Answer', 'Observation'",
               "the same step written with different capitals is the same step"),
    Difference("react_thought", "parsing",
               "ReAct thought = the text before the first 'Action:' / 'Final Answer:' marker, 'Thought:' label "
               "removed",
               "the text before the first 'Action' or 'Final Answer' anywhere (also inside a word), label kept",
               "the label is not part of the thought and an English thought may contain the word 'Action'"),
    Difference("react_json_input", "parsing",
               "a ReAct Action Input that is a JSON object keeps all its arguments",
               "the raw Action Input text becomes the value of the tool's first parameter",
               "multi-argument calls otherwise lose Tool-use credit for every argument but the first"),
    Difference("react_plain_input", "parsing",
               "a plain ReAct Action Input loses surrounding quotes and goes to the tool's first required parameter "
               "(else first declared; 'input' for a tool not in funcs)",
               "quotes kept; first declared property; no arguments when the tool is not in funcs",
               "\"北京\" and 北京 are the same argument"),
    Difference("toolllama_thought", "parsing",
               "a ToolLlama output without 'Thought:' has the text before its 'Action:' as thought",
               "the thought is the empty list [], scored as the text \"[]\"",
               "a missing label should not turn the thought into \"[]\""),
    Difference("toolllama_plain_input", "parsing",
               "a ToolLlama Action Input that is not JSON goes to the tool's first parameter, like ReAct",
               "no arguments",
               "keeps the argument a model wrote without braces"),
    Difference("modelscope_thought", "parsing",
               "ModelScope thought = the text before <|startofthink|>",
               "the thought is never set ('None'), so ModelScope Planning is always about 0",
               "a parser bug in the official script"),
    Difference("modelscope_unterminated", "parsing",
               "a think block without <|endofthink|> is read to the end of the output",
               "no call without the closing marker",
               "models often stop right after the JSON"),
    Difference("tool_name_cleanup", "parsing",
               "tool names lose surrounding spaces, backticks, quotes and brackets (`web_search`, [web_search])",
               "ReAct/ToolLlama names are only stripped of spaces; JSON names are compared as written",
               "decoration around a correct tool name is not a wrong tool"),
    Difference("final_answer_task_complete", "parsing",
               "a final answer in a planning format (ReAct 'Final Answer:', ToolLlama Finish with give_answer, "
               "ModelScope text with no think block) counts as the tool task_complete with no arguments",
               "no tool ('None'; ToolLlama: the tool 'Finish')",
               "finishing is the right step when the golden step is task_complete"),
    Difference("answer_extraction", "answers",
               "concluding outputs: the answer is extracted as the agent loop would (ReAct 'Final Answer:', "
               "ToolLlama Finish, AutoGPT task_complete args), text trimmed",
               "the raw text, except AutoGPT 'response=\"' / web_search( and ToolLlama '\"final_answer\": \"' cleaning",
               "format scaffolding around an answer is not part of the answer"),
    Difference("benchmark_templates", "templates",
               "records and templates come from the benchmark (its order, prompt_input keys): a template with no "
               "output scores 0, prediction keys the benchmark does not list are ignored",
               "the prediction's model_predict keys in predictions-file order; missing templates are left out of "
               "the mean, extra keys are scored",
               "a model must not gain by leaving out the templates it does badly on"),
    Difference("no_parse_reuse", "templates",
               "every template is read on its own: an empty ReACT output scores 0 and an unknown key is read in "
               "the format its prompt asks for (detect_format, 'Kuaiagent' = KuaiAgent)",
               "an empty ReACT output or an unknown key silently reuses the previous template's parse",
               "one template's output must not be scored as another's"),
    Difference("empty_gold_args", "scoring",
               "a golden call without arguments (task_complete) is matched by any predicted arguments",
               "ArgScore 0 when the golden call has no arguments but the prediction has some (empty mean)",
               "extra arguments are never penalised elsewhere"),
    Difference("exact_rouge", "scoring",
               "F = 2PR/(P+R): identical texts score exactly 1",
               "rouge-chinese's F = 2PR/(P+R+1e-8): identical texts score 0.99999999",
               "golden answers fed back must score 100"),
    Difference("regex_tokenizer", "scoring",
               "regex word tokenizer (contractions and quotes kept, every punctuation mark a token, no sentence "
               "split), then CJK tokens split into characters",
               "nltk.word_tokenize (Punkt sentence split, Treebank rules: do n't, `` '', U.S., URLs), then CJK "
               "split",
               "simple, documented tokens; the Punkt model used to need a download"),
    Difference("renormalise_overall", "aggregation",
               "Overall is the weighted mean of the abilities present, weights renormalised (subset benchmarks)",
               "all five abilities are needed (an ability with no record divides by zero)",
               "notebooks score small subsets"),
)


@dataclass(frozen=True)
class ScoringOptions:
    """One boolean per row of :data:`DIFFERENCES`; True = labkit's rule, False = the official script's."""

    cut_end_markers: bool = True
    tolerant_json: bool = True
    lenient_markers: bool = True
    react_thought: bool = True
    react_json_input: bool = True
    react_plain_input: bool = True
    toolllama_thought: bool = True
    toolllama_plain_input: bool = True
    modelscope_thought: bool = True
    modelscope_unterminated: bool = True
    tool_name_cleanup: bool = True
    final_answer_task_complete: bool = True
    answer_extraction: bool = True
    benchmark_templates: bool = True
    no_parse_reuse: bool = True
    empty_gold_args: bool = True
    exact_rouge: bool = True
    regex_tokenizer: bool = True
    renormalise_overall: bool = True

    @classmethod
    def labkit(cls) -> ScoringOptions:
        return cls()

    @classmethod
    def official(cls) -> ScoringOptions:
        return cls(**{f.name: False for f in fields(cls)})

    def with_(self, **switches: bool) -> ScoringOptions:
        unknown = sorted(set(switches) - set(FLAGS))
        if unknown:
            from labkit.errors import UnknownNameError
            raise UnknownNameError("scoring switch", unknown[0], list(FLAGS))
        return replace(self, **switches)

    @property
    def on(self) -> tuple[str, ...]:
        return tuple(f for f in FLAGS if getattr(self, f))

    @property
    def is_official(self) -> bool:
        return not self.on

    @property
    def tokenizer(self) -> str:
        return "regex" if self.regex_tokenizer else "kagentbench"


FLAGS: tuple[str, ...] = tuple(d.flag for d in DIFFERENCES)
COMPAT_MODES: tuple[str, ...] = ("kagentbench",)


def resolve_options(compat: str | None = None, options: ScoringOptions | None = None) -> ScoringOptions:
    """``compat="kagentbench"`` -> all switches off; else ``options`` (default: labkit's own mode)."""
    if compat is None:
        return options if options is not None else ScoringOptions.labkit()
    if compat not in COMPAT_MODES:
        from labkit.errors import UnknownNameError
        raise UnknownNameError("compat mode", compat, list(COMPAT_MODES))
    if options is not None and options != ScoringOptions.official():
        raise ValueError("pass either compat='kagentbench' or options, not both")
    return ScoringOptions.official()


# One row of the table as notebook 06 shows it (column names with spaces: the functional TypedDict form).
DifferenceRow = TypedDict("DifferenceRow", {"switch": str, "area": str, "labkit (on)": str, "official (off)": str,
                                            "why": str})


def differences_rows() -> list[DifferenceRow]:
    """:data:`DIFFERENCES` as table rows (:func:`differences_frame`)."""
    return [{"switch": d.flag, "area": d.area, "labkit (on)": d.labkit, "official (off)": d.official, "why": d.why}
            for d in DIFFERENCES]


def differences_frame() -> Any:
    """The table as a pandas DataFrame (notebook 06 shows it)."""
    import pandas as pd
    return pd.DataFrame(differences_rows()).set_index("switch")


def differences_markdown() -> str:
    """The table as Markdown (docs/ARCHITECTURE.md embeds exactly this text; a test keeps them equal)."""
    cell = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| switch | area | labkit (switch on) | official script (switch off) |", "|---|---|---|---|"]
    lines += [f"| `{d.flag}` | {d.area} | {cell(d.labkit)} | {cell(d.official)} |" for d in DIFFERENCES]
    return "\n".join(lines)
