"""Scan text for the first complete top-level JSON object while it is being generated.

Used to stop decoding as soon as a JSON-format answer is complete (``labkit.llm.local``) instead of letting a small
model run on to its token limit: the scanner follows strings and escapes, so braces inside values do not count.
It also spots a key repeated inside one object (``{"a": 1, "a": 1, "a": ...``), the loop an under-trained model
falls into, so generation can stop there too; the parser then reads the first occurrence (``json.loads`` keeps the
last — repair takes care of it).
"""

from __future__ import annotations

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


def scan_object(text: str) -> ObjectScan:
    """Scan ``text`` up to the end of its first top-level ``{...}`` (or the end of the text)."""
    scan = ObjectScan()
    in_string, escaped = False, False
    token: list[str] = []  # the string being read
    last_string: str | None = None  # the last complete string, a key if a ':' follows
    string_start = 0
    for i, ch in enumerate(text):
        if scan.start is None:
            if ch == "{":
                scan.start, scan.depth = i, 1
                scan._keys.append(set())
            continue
        if in_string:
            if escaped:
                escaped = False
                token.append(ch)
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string, last_string = False, "".join(token)
            else:
                token.append(ch)
            continue
        if ch == '"':
            in_string, token, string_start = True, [], i
        elif ch == ":" and last_string is not None:
            keys = scan._keys[-1]
            if last_string in keys and scan.repeated_key is None:
                scan.repeated_key, scan.repeated_at = last_string, string_start
            keys.add(last_string)
            last_string = None
        elif ch in "{[":
            scan.depth += 1
            scan._keys.append(set())
            last_string = None
        elif ch in "}]":
            scan.depth -= 1
            scan._keys.pop()
            last_string = None
            if scan.depth == 0:
                scan.end = i + 1
                return scan
        elif not ch.isspace():
            last_string = None
    return scan


def first_object_end(text: str) -> int | None:
    """Index just after the first complete top-level JSON object in ``text``, or None while it is still open."""
    return scan_object(text).end
