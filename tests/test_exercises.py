"""The exercise mechanism: registry, check(), CheckResult rendering, placeholders, student-code errors."""

from __future__ import annotations

import pytest

from labkit.errors import UnknownNameError
from labkit.exercises import MIME, CheckResult, check, exercise, failed, get_exercise, passed, run_student


@exercise("99.1", title="两数相加", note_section="§0 测试")
def _add(answer, *, a, b):
    if answer == a + b:
        return passed("对了。")
    if answer == a * b:
        return failed("你算的是乘积，题目要的是和。")
    return failed("再算一遍 a + b。", got=answer)


@exercise("99.2", title="写一个函数", note_section="§0 测试")
def _fn(answer):
    value = run_student(answer, 2)
    return passed("好。") if value == 4 else failed(f"f(2) 应该是 4，你的函数返回 {value!r}。")


def test_right_and_wrong_answers() -> None:
    ok = check("99.1", 5, a=2, b=3)
    assert ok.passed and bool(ok) and ok.status == "passed" and ok.title == "两数相加"
    wrong = check("99.1", 6, a=2, b=3)
    assert not wrong and wrong.status == "failed" and "乘积" in wrong.message
    other = check("99.1", 7, a=2, b=3)
    assert other.details == {"got": 7} and "a + b" in other.message


@pytest.mark.parametrize("placeholder", [..., None])
def test_placeholder_is_unanswered_and_never_reaches_the_checker(placeholder: object) -> None:
    res = check("99.2", placeholder)
    assert res.status == "unanswered" and not res.passed and "# >>> 练习 99.2" in res.message


def test_student_exceptions_become_feedback() -> None:
    def broken(x):
        return x / 0

    res = check("99.2", broken)
    assert res.status == "failed" and "ZeroDivisionError" in res.message and "broken(2)" in res.message
    res = check("99.2", 42)
    assert res.status == "failed" and "函数" in res.message
    assert check("99.2", lambda x: x * x).passed


def test_unknown_id_lists_known_ids() -> None:
    with pytest.raises(UnknownNameError) as info:
        check("98.7", 1)
    assert "99.1" in str(info.value) and "98.7" in str(info.value)


def test_rendering_and_mime_bundle() -> None:
    res = check("99.1", 6, a=2, b=3)
    page = res._repr_html_()
    assert "练习 99.1" in page and "未通过" in page and "§0 测试" in page and "乘积" in page
    bundle = res._repr_mimebundle_()
    assert bundle[MIME] == {"id": "99.1", "status": "failed", "passed": False, "title": "两数相加"}
    assert "未通过" in bundle["text/plain"]
    assert "<script" not in CheckResult("99.1", "<script>", "s", "passed", "<b>")._repr_html_()


def test_registration_rules() -> None:
    with pytest.raises(ValueError, match="look like"):
        exercise("3.2", title="t", note_section="s")
    with pytest.raises(ValueError, match="required"):
        exercise("99.3", title="", note_section="s")
    with pytest.raises(ValueError, match="twice"):
        @exercise("99.1", title="again", note_section="s")
        def _other(answer):  # a second, different checker for the same id
            return passed("")
    assert get_exercise("99.1").notebook == "99"


def test_checker_must_return_feedback() -> None:
    @exercise("99.4", title="bad", note_section="s")
    def _bad(answer):
        return True

    with pytest.raises(TypeError, match="passed"):
        check("99.4", 1)
