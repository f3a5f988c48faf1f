"""Scan text for the first complete top-level JSON object while it is being generated.

Used to stop decoding as soon as a JSON-format answer is complete (``labkit.llm.local``) instead of letting a small
model run on to its token limit: the scanner follows strings and escapes, so braces inside values do not count.
It also spots a key repeated inside one object (``{"a": 1, "a": 1, "a": ...``), the loop an under-trained model
falls into, so generation can stop there too; the parser then reads the first occurrence (``json.loads`` keeps the
last — repair takes care of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class ObjectScan:
    """Where the first top-level object starts and ends (``end`` is exclusive) and whether a key repeated
    (``repeated_at``: where that repeated key's opening quote is, so the text can be cut just before it)."""

    start: int | None = None
    end: int | None = None
    repeated_key: str | None = None
    repeated_at: int | None = None
    depth: int = 0
    _keys: list[set[str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.end is not None


_STRUCTURE = re.compile(r'[\\"{}\[\]:]')  # a backslash, a quote, a bracket or a colon
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def scan_object(text: str) -> ObjectScan:
    """Scan ``text`` up to the end of its first top-level ``{...}`` (or the end of the text).

    Jumps from one structural character to the next (a regex finds them), so a long string value or long prose
    costs no Python step per character (a 5 MB output is scanned in milliseconds)."""
    scan = ObjectScan()
    first = text.find("{")
    if first == -1:
        return scan
    scan.start, scan.depth = first, 1
    scan._keys.append(set())
    in_string = False
    string_start = 0
    last_string: str | None = None  # the last complete string, a key if a ':' follows
    gap_from = first + 1  # where the text since the last structural character starts
    escaped = -1  # inside a string, the position a backslash escapes
    for m in _STRUCTURE.finditer(text, first + 1):
        i, tok = m.start(), m.group()
        if in_string:
            if i == escaped:
                continue
            if tok == "\\":
                escaped = i + 1
            elif tok == '"':
                in_string, gap_from = False, i + 1
                raw = text[string_start + 1:i]
                last_string = _ESCAPE.sub(r"\1", raw) if "\\" in raw else raw
            continue
        if text[gap_from:i].strip():  # anything but spaces between a string and this character: not a key
            last_string = None
        gap_from = m.end()
        if tok == '"':
            in_string, string_start = True, i
        elif tok == ":":
            if last_string is not None:
                keys = scan._keys[-1]
                if last_string in keys and scan.repeated_key is None:
                    scan.repeated_key, scan.repeated_at = last_string, string_start
                keys.add(last_string)
            last_string = None
        elif tok in "{[":
            scan.depth += 1
            scan._keys.append(set())
            last_string = None
        elif tok in "}]":
            scan.depth -= 1
            scan._keys.pop()
            last_string = None
            if scan.depth == 0:
                scan.end = i + 1
                return scan
        else:  # a backslash outside a string
            last_string = None
    return scan


def first_object_end(text: str) -> int | None:
    """Index just after the first complete top-level JSON object in ``text``, or None while it is still open."""
    return scan_object(text).end
