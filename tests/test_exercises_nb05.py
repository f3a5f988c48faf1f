"""Notebook 05's checkers: the right answer passes, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

import math
from typing import Any

import pytest

from labkit.chat import END_OF_TURN
from labkit.course import load_solutions
from labkit.exercises import check
from labkit.paths import REPO_ROOT
from labkit.train.collate import encode_messages
from labkit.train.cost import NOTE_ROWS

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "05.py")
MESSAGES = [{"role": "user", "content": "北京现在天气怎么样？", "loss": False},
            {"role": "assistant", "content": '{"task_name": "查天气", "command": {"name": "get_weather_info"}}',
             "loss": True}]


@pytest.fixture(scope="module")
def tok() -> Any:
    from labkit.llm import load_tokenizer

    return load_tokenizer()


def _run(exercise_id: str, name: str, **scope: Any) -> Any:
    exec(SOL[exercise_id], scope)
    return scope[name]


@pytest.fixture(scope="module")
def mask_ctx(tok: Any) -> dict[str, Any]:
    return {"messages": MESSAGES, "tokenizer": tok}


def solution(tok: Any) -> Any:
    return _run("05.1", "make_labels", tokenizer=tok)


def test_05_1_solution_passes(tok: Any, mask_ctx: dict[str, Any]) -> None:
    res = check("05.1", solution(tok), **mask_ctx)
    assert res.passed, res.message


def test_05_1_copied_labels_fail(tok: Any, mask_ctx: dict[str, Any]) -> None:
    """Issue 21: `full.labels` was in the notebook's namespace, so copying it passed."""
    full = encode_messages(MESSAGES, tok, 10**6)
    for answer, hint in [(full.labels, "函数"), (lambda pieces: list(full.labels), "encode_messages"),
                         (lambda pieces: encode_messages(MESSAGES, tok).labels, "encode_messages")]:
        res = check("05.1", answer, **mask_ctx)
        assert res.status == "failed" and hint in res.message, (hint, res.message)
    stored = list(full.labels)  # a constant list smuggled in without the attribute: fails on the unseen samples
    res = check("05.1", lambda pieces: stored, **mask_ctx)
    assert res.status == "failed" and "通用样本" in res.message, res.message


def test_05_1_wrong_masks_get_the_specific_hint(tok: Any, mask_ctx: dict[str, Any]) -> None:
    right = solution(tok)
    eot = tok.convert_tokens_to_ids(END_OF_TURN)

    def ids_of(pieces: Any) -> list[int]:
        return [tok.bos_token_id] + [t for _, text, _ in pieces for t in tok(text, add_special_tokens=False)["input_ids"]]

    cases = [
        (lambda p: "labels", "整数列表"),
        (lambda p: right(p)[1:], "<bos>"),
        (lambda p: right(p) + [1, 2], "长度"),
        (ids_of, "所有位置都被监督了"),
        (lambda p: [-100] * len(ids_of(p)), "全是 -100"),
        (lambda p: [t if lab == -100 else -100 for t, lab in zip(ids_of(p), right(p))], "反了"),
        (lambda p: right(p)[1:] + [-100], "错位了一格"),
        (lambda p: [-100 if t == eot and lab != -100 else lab for t, lab in zip(ids_of(p), right(p))],
         "<end_of_turn> 也要监督"),
        (lambda p: 1 / 0, "ZeroDivisionError"),
    ]
    for answer, hint in cases:
        res = check("05.1", answer, **mask_ctx)
        assert res.status == "failed" and hint in res.message, (hint, res.message)
    # supervising every assistant turn (ignoring loss=False) is right on one-turn samples, wrong on the two-turn one
    every = lambda p: right([(r, t, s or (r == "assistant" and t.endswith(END_OF_TURN))) for r, t, s in p])  # noqa
    res = check("05.1", every, **mask_ctx)
    assert res.status == "failed" and "两轮对话" in res.message, res.message


def test_05_2_solution_and_wrong_predictions(tok: Any) -> None:
    v = len(tok)
    assert check("05.2", _run("05.2", "my_prediction", tokenizer=tok, math=math), vocab_size=v).passed
    for answer, hint in [
        (12.5, "dict"),
        ({"random_init": math.log10(v), "pretrained": "lower"}, "以 10 为底"),
        ({"random_init": math.log2(v), "pretrained": "lower"}, "以 2 为底"),
        ({"random_init": v, "pretrained": "lower"}, "词表大小"),
        ({"random_init": 3.0, "pretrained": "lower"}, "−ln(1/V)"),
        ({"random_init": math.log(v), "pretrained": "higher"}, "已经学会了语言"),
        ({"random_init": math.log(v), "pretrained": "same"}, "只能是"),
    ]:
        res = check("05.2", answer, vocab_size=v)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


CTX = {"params": 7e9, "tokens": 940e6, "epochs": 3, "gpus": 8, "mfu": NOTE_ROWS[0].mfu()}


def test_05_3_solution_matches_the_note_scaled() -> None:
    answer = _run("05.3", "my_cost", mfu_7b=CTX["mfu"])
    assert abs(answer["hours"] - 75.0) < 0.01  # 125 h x 2 (data) x 3/5 (epochs) / 2 (GPUs)
    assert check("05.3", answer, **CTX).passed


@pytest.mark.parametrize("answer, hint", [
    (75, "dict"),
    ({"hours": 25, "cost_cny": 6948}, "漏乘了 epoch"),
    ({"hours": 600, "cost_cny": 166761}, "忘了除以 GPU 数"),
    ({"hours": 4800, "cost_cny": 1}, "乘到了分子上"),
    ({"hours": 75 * NOTE_ROWS[0].mfu(), "cost_cny": 1}, "漏了 MFU"),
    ({"hours": 12.5, "cost_cny": 3474}, "漏了 6"),
    ({"hours": 75, "cost_cny": 75 * 34.742}, "漏了 GPU 数"),
    ({"hours": 75, "cost_cny": 1000}, "34.742"),
    ({"hours": 80, "cost_cny": 1000}, "312e12"),
])
def test_05_3_wrong_estimates_get_the_specific_hint(answer: Any, hint: str) -> None:
    res = check("05.3", answer, **CTX)
    assert res.status == "failed" and hint in res.message, (hint, res.message)
