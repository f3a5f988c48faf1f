"""Bounds for untrusted values: what a model writes, what a template file holds, what goes back into a prompt.

A model's output or a Meta-Agent's template may hold a 500-deep JSON value, a 5,000-digit number or a 5 MB string.
The helpers here measure such values without recursion and in time bounded by the limit asked for (never by the
value's size), and clip them for error messages and prompts, so a hostile value becomes a refused step or a
clipped echo instead of a ``RecursionError``, a ``ValueError`` from Python's int-string limit, or a 5 MB prompt.

* :func:`deeper_than` - whether a value nests deeper than a limit (iterative);
* :func:`text_size` - about how many characters ``str(value)`` / JSON would take, counted up to a limit;
* :func:`clip` / :func:`show` - a text / a value's ``repr`` cut for a message, with a marker saying how much went;
* :func:`clip_value` - a JSON-like copy within a character budget (long strings cut, deep or long parts elided),
  what the agent loop shows of a completed call in the next prompt.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

MAX_JSON_DEPTH = 32  # nesting a value read from model text may have; agent JSON nests 3-4 levels
MAX_INT_DIGITS = 1000  # longer integers are not numbers a tool or a scorer can use (Python refuses > 4300)
MAX_PROMPT_VALUE_CHARS = 2000  # what one completed call's thought / arguments may add to a prompt
MAX_ECHO_CHARS = 200  # a value quoted in an error message

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = MAX_ECHO_CHARS
_repr.maxlevel = 4


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:max(limit, 0)]}…[truncated {len(text) - max(limit, 0)} characters]"


def show(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` for an error message, in bounded time and size (``reprlib``: nested and long containers,
    huge numbers and long strings are abbreviated)."""
    try:
        text = repr(value) if isinstance(value, (str, bytes)) else _repr.repr(value)
    except Exception:  # noqa: BLE001 - a hostile object's __repr__ must not break an error message
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def _children(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value.values()
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    return ()


def deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` (dicts, lists, scalars) nests more than ``limit`` containers deep. Iterative, and it
    stops at the first branch past the limit."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = _children(item)
        if children == ():
            continue
        if depth >= limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def int_digits(value: int) -> int:
    """Decimal digits of an integer, from its bit length (``len(str(n))`` raises past Python's 4,300-digit limit)."""
    return max(1, int(abs(value).bit_length() * 0.30103) + 1)


def text_size(value: Any, limit: int) -> int:
    """About how many characters ``value`` takes as text (``str`` / JSON: strings, numbers, containers with their
    punctuation); counting stops once past ``limit``, so the cost is bounded by the limit, not the value."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += int_digits(item) + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            for k, v in item.items():
                stack.append(k)
                stack.append(v)
                if len(stack) > limit:
                    return limit + 1
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 16  # other objects print as a short tag (a generator, a range, a macro)
    return total


def clip_value(value: Any, budget: int = MAX_PROMPT_VALUE_CHARS, max_depth: int = 8) -> Any:
    """A copy of a JSON-like value that takes at most about ``budget`` characters as JSON: long strings cut with a
    ``…[truncated N characters]`` marker, integers beyond :data:`MAX_INT_DIGITS` digits written as a note, parts
    below ``max_depth`` or past the budget replaced by ``"…"``. Values already within the budget come back equal."""
    left = [budget]

    def walk(item: Any, depth: int) -> Any:
        if left[0] <= 0:
            return "…"
        if isinstance(item, str):
            out = clip(item, left[0])
            left[0] -= len(out) + 2
            return out
        if isinstance(item, bool) or item is None or isinstance(item, float):
            left[0] -= 5
            return item
        if isinstance(item, int):
            digits = int_digits(item)
            left[0] -= min(digits, MAX_INT_DIGITS)
            return item if digits <= MAX_INT_DIGITS else f"<an integer of about {digits} digits>"
        if depth >= max_depth:
            left[0] -= 1
            return "…"
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(item.items()):
                if left[0] <= 0:
                    out["…"] = f"{len(item) - i} more"
                    break
                key = clip(str(k), max(left[0], 0))
                left[0] -= len(key) + 4
                out[key] = walk(v, depth + 1)
            return out
        if isinstance(item, (list, tuple)):
            items = []
            for i, v in enumerate(item):
                if left[0] <= 0:
                    items.append(f"… {len(item) - i} more")
                    break
                items.append(walk(v, depth + 1))
                left[0] -= 2
            return items
        return walk(show(item), depth)

    return walk(value, 0)
