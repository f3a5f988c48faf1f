"""labkit.jsonscan on hostile text: the same answers as a plain character-by-character scan, in a number of Python
steps that does not grow with a string's length or a run of brackets (issue 20's fuzz bench: a 5 MB string of
escapes or quotes took ~1.8 s of CPU to scan one character class match at a time)."""

from __future__ import annotations

import random
import sys

from labkit.jsonscan import first_object_end, scan_object


def reference(text: str) -> tuple[int | None, int, str | None, int | None]:
    """(end, depth, repeated_key, repeated_at), one character at a time: what scan_object must agree with."""
    first = text.find("{")
    if first == -1:
        return None, 0, None, None
    depth, keys, repeated, at = 1, [set()], None, None
    i, last, last_at, gap_clean = first + 1, None, 0, True
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                return None, depth, repeated, at
            raw = text[i + 1:j]
            out, k = [], 0
            while k < len(raw):  # a backslash keeps the character after it
                out.append(raw[k + 1] if raw[k] == "\\" and k + 1 < len(raw) else raw[k])
                k += 2 if raw[k] == "\\" else 1
            last, last_at, gap_clean, i = "".join(out), i, True, j + 1
            continue
        if ch == ":" and last is not None and gap_clean:
            if last in keys[-1] and repeated is None:
                repeated, at = last, last_at
            keys[-1].add(last)
        if ch in "{[":
            depth += 1
            keys.append(set())
        elif ch in "}]":
            depth -= 1
            keys.pop()
            if depth == 0:
                return i + 1, 0, repeated, at
        if ch in '{}[]:':
            last = None
        elif not ch.isspace():
            gap_clean = False
        i += 1
    return None, depth, repeated, at


PIECES = ['{', '}', '[', ']', '"', '\\', '\\"', '\\\\', ':', ',', ' ', '\n', 'a', '"k"', '"k":', '"k" :', 'x"k":',
          '{"k": 1, "k": 2}', '中', '\ud800', '\x00', '[[[[', ']]]]}', '{{{{']


def test_scan_agrees_with_a_character_by_character_scan() -> None:
    rng = random.Random(20)
    texts = ['{"a": "}\\"}", "b": [1, {"c": "]"}]}', '{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 2}}', '{"a\\"": 1, '
             '"a\\"": 2}', '{"x": "\\\\"} tail', '{"x": "\\\\\\"}"}', '{[[[]]]}]]', "no json", '{"k" x: 1, "k": 2}']
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 40))) for _ in range(5000)]
    for text in texts:
        scan = scan_object(text)
        got = (scan.end, scan.depth, scan.repeated_key, scan.repeated_at)
        assert got == reference(text), text
        assert first_object_end(text) == scan.end


def python_steps(text: str) -> int:
    """Lines of scan_object's own frame executed for ``text`` (sys.settrace): its Python work, not its time."""
    steps = 0

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202 - the sys.settrace protocol
        nonlocal steps
        if frame.f_code is not scan_object.__code__:
            return None
        if event == "line":
            steps += 1
        return tracer

    sys.settrace(tracer)
    try:
        scan_object(text)
    finally:
        sys.settrace(None)
    return steps


def test_python_steps_do_not_grow_with_strings_or_bracket_runs() -> None:
    shapes = {"escaped quotes": lambda n: '{"a": "' + '\\"' * n + '"}',
              "backslash run": lambda n: '{"a": "' + "\\\\" * n + '"}',
              "braces in a string": lambda n: '{"a": "' + "{[" * n + '"}',
              "deep nesting": lambda n: "{" + "[" * n + "]" * n + "}",
              "open brackets": lambda n: "{" + "[" * n}
    for shape, make in shapes.items():
        small, large = python_steps(make(10)), python_steps(make(20_000))
        assert large <= small + 5, (shape, small, large)  # a step per character would be ~20,000 more
