"""One test per row of the difference table, hand-computed, with the switch on and off in both modes.

For each switch: the official script's value (all switches off), official + this switch alone, labkit's own mode
(all on) and labkit without this switch. ROUGE values are written as token counts (LCS, hypothesis, reference)
counted by hand, turned into F with the two formulas below; every text is chosen so both tokenizers give the same
counts (asserted where it matters), except in the tokenizer's own case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labkit.evaluate.differences import (
    DIFFERENCES,
    FLAGS,
    DifferenceRow,
    ScoringOptions,
    differences_markdown,
    differences_rows,
    resolve_options,
)
from labkit.evaluate.rouge import tokenize
from labkit.evaluate.scorer import score_predictions


def off(lcs: int, hyp: int, ref: int) -> float:
    """rouge-chinese's F (the official script): 2·(P·R)/(P+R+1e-8), in its own float operations."""
    p, r = lcs / hyp, lcs / ref
    return 2.0 * ((p * r) / (p + r + 1e-8))


def exact(lcs: int, hyp: int, ref: int) -> float:
    p, r = lcs / hyp, lcs / ref
    return 2 * p * r / (p + r)


ONE = off(1, 1, 1)  # an identical text, officially: 0.999999995

FUNCS = [{"name": "get_weather_info", "description": "weather",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "date": {"type": "string"}},
                         "required": ["location", "date"]}},
         {"name": "web_search", "description": "search",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
WEATHER = {"thought": "查询北京天气", "tool_name": "get_weather_info", "tool_args": {"location": "北京", "date": "明天"}}
DONE = {"thought": "任务完成", "tool_name": "task_complete", "tool_args": {}}
TASK = ('{"task_name": "查询北京天气", "command": {"name": "get_weather_info", '
        '"args": {"location": "北京", "date": "明天"}}}')
AUTO = ('{"thoughts": {"text": "查询北京天气"}, "command": {"name": "get_weather_info", '
        '"args": {"location": "北京", "date": "明天"}}}')
ARGS_JSON = '{"location": "北京", "date": "明天"}'  # 19 tokens with either tokenizer, 北 京 among them


def plan(outputs: dict[str, Any], golden: dict[str, Any] = WEATHER, prompts: list[str] | None = None) -> dict:
    return {"id": "r", "type": "plantooluse", "query": "北京明天天气", "funcs": FUNCS, "golden_result_list": [golden],
            "prompt_input": {k: "prompt" for k in (prompts if prompts is not None else outputs)},
            "model_predict": outputs, "memory_last_task": {}}


def answer(typ: str, golden: str, output: Any, key: str = "KuaiAgent") -> dict:
    return {"id": "r", "type": typ, "query": "q", "golden_result_list": [{"golden_result": golden}],
            "prompt_input": {"prompt" if typ == "profile" else key: "prompt"},
            "model_predict": output if typ == "profile" else {key: output}}


def scores(record: dict, options: ScoringOptions) -> dict[str, float | None]:
    """Abilities as the per-record mean over templates (one record: Dimension = that mean × 100) and Overall (%)."""
    report = score_predictions([record], [record], options=options)
    return {**report.dimensions, "Overall": report.overall}


# (switch, record, dimensions, official, official + switch, labkit, labkit − switch): per-template values (Overall: %)
CASES: list[tuple[str, dict, tuple[str, ...], tuple, tuple, tuple, tuple]] = [
    ("cut_end_markers", answer("profile", "你好我是小析", "你好我是小析<end_of_turn>\n<start_of_turn>user\n谢谢"),
     ("Profile",), (off(6, 15, 6),), (ONE,), (1.0,), (exact(6, 15, 6),)),
    ("tolerant_json", plan({"KuaiAgent": f"```json\n{TASK}\n```"}),
     ("Planning", "Tool-use"), (0.0, 0.0), (ONE, ONE), (1.0, 1.0), (0.0, 0.0)),
    ("lenient_markers", plan({"ReACT": "Thought: 查询北京天气\naction: get_weather_info\naction input: 北京"}),
     ("Planning", "Tool-use"), (0.0, 0.0), (off(6, 8, 6), ONE / 2), (1.0, 0.5), (0.0, 0.0)),
    ("react_thought", plan({"ReACT": "Thought: 查询北京天气\nAction: get_weather_info\nAction Input: 北京"}),
     ("Planning", "Tool-use"), (off(6, 8, 6), ONE / 2), (ONE, ONE / 2), (1.0, 0.5), (exact(6, 8, 6), 0.5)),
    ("react_json_input", plan({"ReACT": f"Thought: 查询北京天气\nAction: get_weather_info\nAction Input: {ARGS_JSON}"}),
     ("Planning", "Tool-use"), (off(6, 8, 6), off(2, 19, 2) / 2), (off(6, 8, 6), ONE), (1.0, 1.0),
     (1.0, exact(2, 19, 2) / 2)),
    ("react_plain_input", plan({"ReACT": 'Thought: 查询北京天气\nAction: get_weather_info\nAction Input: "北京"'}),
     ("Planning", "Tool-use"), (off(6, 8, 6), off(2, 4, 2) / 2), (off(6, 8, 6), ONE / 2), (1.0, 0.5),
     (1.0, exact(2, 4, 2) / 2)),
    ("toolllama_thought", plan({"ToolLlama": f"查询北京天气\nAction: get_weather_info\nAction Input: {ARGS_JSON}"}),
     ("Planning", "Tool-use"), (0.0, ONE), (ONE, ONE), (1.0, 1.0), (0.0, 1.0)),
    ("toolllama_plain_input", plan({"ToolLlama": "Thought: 查询北京天气\nAction: get_weather_info\nAction Input: 北京"}),
     ("Planning", "Tool-use"), (ONE, 0.0), (ONE, ONE / 2), (1.0, 0.5), (1.0, 0.0)),
    ("modelscope_thought", plan({"ModelScope": '查询北京天气<|startofthink|>{"api_name": "get_weather_info", '
                                               f'"parameters": {ARGS_JSON}}}<|endofthink|>'}),
     ("Planning", "Tool-use"), (0.0, ONE), (ONE, ONE), (1.0, 1.0), (0.0, 1.0)),
    ("modelscope_unterminated", plan({"ModelScope": '查询北京天气<|startofthink|>{"api_name": "get_weather_info", '
                                                    f'"parameters": {ARGS_JSON}}}'}),
     ("Planning", "Tool-use"), (0.0, 0.0), (0.0, ONE), (1.0, 1.0), (0.0, 0.0)),
    ("tool_name_cleanup", plan({"KuaiAgent": TASK.replace('"get_weather_info"', '"`get_weather_info`"')}),
     ("Planning", "Tool-use"), (0.0, 0.0), (ONE, ONE), (1.0, 1.0), (0.0, 0.0)),
    ("final_answer_task_complete", plan({"ReACT": "Thought: 任务完成\nFinal Answer: 北京明天晴"}, DONE),
     ("Planning", "Tool-use"), (0.0, 0.0), (off(4, 6, 4), 1.0), (1.0, 1.0), (0.0, 0.0)),
    ("answer_extraction", answer("conclusion", "北京明天晴", "Thought: 我知道了\nFinal Answer: 北京明天晴", "ReACT"),
     ("Concluding",), (off(5, 14, 5),), (ONE,), (1.0,), (exact(5, 14, 5),)),
    ("benchmark_templates", plan({"KuaiAgent": TASK, "AutoGPT": AUTO}, prompts=["ReACT", "KuaiAgent"]),
     ("Planning",), (ONE,), (ONE / 2,), (0.5,), (1.0,)),
    ("no_parse_reuse", plan({"KuaiAgent": TASK, "ReACT": ""}),
     ("Planning",), (ONE,), (ONE / 2,), (0.5,), (1.0,)),
    ("empty_gold_args", plan({"KuaiAgent": '{"task_name": "任务完成", "command": {"name": "task_complete", '
                                           '"args": {"reason": "好了"}}}'}, DONE),
     ("Planning", "Tool-use"), (ONE, 0.0), (ONE, 1.0), (1.0, 1.0), (1.0, 0.0)),
    ("exact_rouge", plan({"KuaiAgent": TASK}),
     ("Planning", "Tool-use"), (ONE, ONE), (1.0, 1.0), (1.0, 1.0), (ONE, ONE)),
    # nltk: I do n't know (4) vs I do not know (4): LCS 3; regex: I don't know (3) vs I do not know (4): LCS 2
    ("regex_tokenizer", answer("profile", "I don't know", "I do not know"),
     ("Profile",), (off(3, 4, 4),), (off(2, 4, 3),), (exact(2, 4, 3),), (exact(3, 4, 4),)),
    ("renormalise_overall", answer("profile", "你好", "你好"),
     ("Overall",), (None,), (0.1 * (ONE * 100) / 0.1,), (0.1 * 100.0 / 0.1,), (None,)),
]


def test_every_switch_has_a_case_and_the_options_match_the_table() -> None:
    assert [list(r) for r in differences_rows()] == [list(DifferenceRow.__annotations__)] * len(DIFFERENCES)
    assert [c[0] for c in CASES] == list(FLAGS)
    assert [f for f in ScoringOptions.__dataclass_fields__] == list(FLAGS)
    assert ScoringOptions.labkit().on == FLAGS and ScoringOptions.official().is_official
    assert len({d.flag for d in DIFFERENCES}) == len(DIFFERENCES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_switch_on_and_off_in_both_modes(case: tuple) -> None:
    flag, record, dims, official, official_on, labkit, labkit_off = case
    runs = {"official": ScoringOptions.official(), "official + switch": ScoringOptions.official().with_(**{flag: True}),
            "labkit": ScoringOptions.labkit(), "labkit - switch": ScoringOptions.labkit().with_(**{flag: False})}
    for (name, options), expected in zip(runs.items(), (official, official_on, labkit, labkit_off)):
        got = scores(record, options)
        for dim, want in zip(dims, expected):
            want = want if dim == "Overall" or want is None else want * 100  # abilities are reported × 100
            assert got[dim] == want, (flag, name, dim, got[dim], want)  # exact: the same float operations
    assert official != labkit or official_on != official  # the switch changes something


def test_token_counts_behind_the_cases() -> None:
    for tokenizer in ("regex", "kagentbench"):
        assert len(tokenize("你好我是小析<end_of_turn>\n<start_of_turn>user\n谢谢", tokenizer)) == 15
        assert len(tokenize(ARGS_JSON, tokenizer)) == 19 and len(tokenize('"北京"', tokenizer)) == 4
        assert len(tokenize("Thought: 我知道了\nFinal Answer: 北京明天晴", tokenizer)) == 14
        assert len(tokenize("Thought: 查询北京天气", tokenizer)) == 8
    assert tokenize("I don't know", "kagentbench") == ["I", "do", "n't", "know"]
    assert tokenize("I don't know") == ["I", "don't", "know"]


def test_compat_argument_and_unknown_switches() -> None:
    assert resolve_options("kagentbench") == ScoringOptions.official()
    assert resolve_options() == ScoringOptions.labkit()
    with pytest.raises(KeyError, match="unknown compat mode 'kagent'"):
        resolve_options("kagent")
    with pytest.raises(ValueError, match="either"):
        resolve_options("kagentbench", ScoringOptions.labkit())
    with pytest.raises(KeyError, match="unknown scoring switch 'tolerant'"):
        ScoringOptions.labkit().with_(tolerant=False)


def test_architecture_doc_embeds_the_table() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert differences_markdown() in doc
