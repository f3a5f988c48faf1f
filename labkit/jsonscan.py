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
    _keys: list[set[str] | None] = field(default_factory=list)  # keys seen per open level (None: none yet)

    @property
    def complete(self) -> bool:
        return self.end is not None


_STRUCTURE = re.compile(r'[\[\]{}":]')  # a bracket, a quote or a colon (one class: a fast search)
_RUN = {"{": re.compile(r"[\[{]+"), "[": re.compile(r"[\[{]+"), "}": re.compile(r"[\]}]+"), "]": re.compile(r"[\]}]+")}
_CLOSING_QUOTE = re.compile(r'(?<!\\)(?:\\\\)*"')  # a quote after an even run of backslashes: a string's end
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_NON_SPACE = re.compile(r"\S")


def scan_object(text: str) -> ObjectScan:
    """Scan ``text`` up to the end of its first top-level ``{...}`` (or the end of the text).

    Regexes find the structure (a string's rest up to its closing quote, a run of brackets), so no Python step is
    spent per character of a long string and none per bracket of a deep run: a 5 MB output is scanned in
    milliseconds, 100,000 nested brackets in a few."""
    scan = ObjectScan()
    first = text.find("{")
    if first == -1:
        return scan
    scan.start, scan.depth = first, 1
    scan._keys.append(None)
    string_start = 0
    last_string: tuple[int, int] | None = None  # where the last complete string's text is: a key if a ':' follows
    gap_from = pos = first + 1  # gap_from: where the text since the last structural character starts
    while True:
        m = _STRUCTURE.search(text, pos)
        if m is None:
            return scan
        i, tok = m.start(), m.group()
        if tok in _RUN:  # the whole run of openers or closers at once
            m = _RUN[tok].match(text, i)
            tok = m.group()
        if last_string is not None and _NON_SPACE.search(text, gap_from, i):  # not only spaces since: no key
            last_string = None
        gap_from = pos = m.end()
        if tok == '"':
            rest = _CLOSING_QUOTE.search(text, i + 1)
            if rest is None:  # the string is still open
                return scan
            string_start, gap_from, pos = i, rest.end(), rest.end()
            last_string = (i + 1, pos - 1)
        elif tok == ":":
            if last_string is not None:
                raw = text[last_string[0]:last_string[1]]
                key = _ESCAPE.sub(r"\1", raw) if "\\" in raw else raw
                if scan._keys[-1] is None:
                    scan._keys[-1] = set()
                keys = scan._keys[-1]
                if key in keys and scan.repeated_key is None:
                    scan.repeated_key, scan.repeated_at = key, string_start
                keys.add(key)
            last_string = None
        elif tok[0] in "{[":
            scan.depth += len(tok)
            scan._keys.extend([None] * len(tok))
            last_string = None
        else:  # a run of closers
            if len(tok) >= scan.depth:  # this run closes the first object
                scan.end = i + scan.depth
                del scan._keys[:]
                scan.depth = 0
                return scan
            scan.depth -= len(tok)
            del scan._keys[-len(tok):]
            last_string = None


def first_object_end(text: str) -> int | None:
    """Index just after the first complete top-level JSON object in ``text``, or None while it is still open."""
    return scan_object(text).end
