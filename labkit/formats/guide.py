"""Call grammars for guided decoding: what a model may write, character by character, while it writes one step.

Deployments offer *strict function calling* / *guided JSON*: while the model writes a tool call, the tool name can
only be one of the offered tools and the argument keys only those of that tool's JSON schema. Here each output format
describes its own call syntax as a small grammar (:meth:`labkit.formats.OutputFormat.call_grammar`): fixed layout
text (``{"task_name":``, ``Action:``, ``<tool>``), free text (a thought, a JSON string value, a final answer), a
choice among finitely many strings (tool names with their terminator, argument keys) and JSON values (strings,
numbers, enums). This module only knows characters; :mod:`labkit.llm.guided` turns a grammar state into a mask over
the tokenizer's vocabulary: a :class:`Choice` is a character trie over its strings (every prefix -> partial or done),
and the tokens allowed at a node are those spelling a prefix of what is left - every tokenization, not only the
canonical one - plus a few precomputed token classes for free text.

A grammar state is an immutable, hashable tuple ``(element, local state, rest, guard, guard tail)``; ``rest`` is the
tuple of elements still to come, the guard refuses strings no output may hold (:class:`Guard`). :func:`step` feeds
one character (``None`` = not allowed), :func:`accepting` says whether the output may end here, :func:`shortest` is
the shortest text that completes it (used to close a call before the token budget runs out) and :func:`expect` lists
what may come next (the strings a token must spell a prefix of, and - inside free text - the characters that make a
token need checking).

Elements are compared by identity; builders are memoised, so equal grammars share their objects and the token level
can cache one mask per state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

STAY, NEXT, PASS = 0, 1, 2  # feed results: consumed (same element) | consumed, element done | not consumed, done
Result = tuple[int, Any] | None
DIGITS = "0123456789"
STRING_SPECIAL = frozenset('"\\') | frozenset(chr(i) for i in range(32))  # what can end or break a JSON string


class Element:
    """One piece of a grammar. Subclasses define how a character moves their local state."""

    __slots__ = ()
    init: Any = 0

    def feed(self, loc: Any, ch: str) -> Result:
        raise NotImplementedError

    def nullable(self, loc: Any) -> bool:
        """True when the element may end here (what follows may start now)."""
        return False

    def shortest(self, loc: Any, roomy: bool = False) -> str:
        """The shortest text that completes this element from ``loc`` (``roomy``: see :func:`shortest`)."""
        return ""

    def exits(self, loc: Any) -> tuple[str, ...]:
        """Strings every next character sequence that is not plain free text must agree with (a prefix of one of
        them, or starting with one)."""
        return ()

    def sensitive(self, loc: Any) -> frozenset[str] | None:
        """Free text: the characters that may end or break it (a token without any of them is plain: it is allowed
        and keeps the element where it is). None: not free text here."""
        return None

    def plain_loc(self, loc: Any) -> Any:
        """The local state after plain text, in the worst case for :func:`shortest` (an upper bound)."""
        return loc

    def leads(self, loc: Any) -> tuple[str, ...]:
        """Optional text this element may still consume before what follows (only W has some)."""
        return ("",)


class Lit(Element):
    """Fixed text, e.g. ``{"task_name":`` or ``\\nAction Input:``."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        assert text, "a literal needs text"
        self.text = text

    def feed(self, i: int, ch: str) -> Result:
        if self.text[i] != ch:
            return None
        return (NEXT, ()) if i + 1 == len(self.text) else (STAY, i + 1)

    def shortest(self, i: int, roomy: bool = False) -> str:
        return self.text[i:]

    def exits(self, i: int) -> tuple[str, ...]:
        return (self.text[i:],)

    def __repr__(self) -> str:
        return f"Lit({self.text!r})"


class Choice(Element):
    """One of several strings (no option a prefix of another), each followed by its own continuation; ``accept``:
    the output may also end before any of them. ``roomy``: a decision the model should keep when the token budget
    runs short (the tool name; a call or an answer) - free text before it is closed early enough for *every*
    option to fit (see :func:`shortest`)."""

    __slots__ = ("options", "accept", "roomy", "_table", "_short")
    init = ""

    def __init__(self, options: Iterable[tuple[str, tuple[Element, ...]]], accept: bool = False,
                 roomy: bool = False):
        self.options = tuple(options)
        self.accept, self.roomy = accept, roomy
        self._table: dict[str, tuple[Element, ...] | None] = {}
        for text, cont in self.options:
            assert text, "an option needs text"
            for k in range(1, len(text)):
                assert self._table.get(text[:k], None) is None, f"option {text[:k]!r} is a prefix of {text!r}"
                self._table[text[:k]] = None
            assert text not in self._table, f"{text!r} is an option and a prefix of another"
            self._table[text] = cont
        self._short: dict[tuple[str, bool], str] = {}

    def feed(self, prefix: str, ch: str) -> Result:
        text = prefix + ch
        if text not in self._table:
            return None
        cont = self._table[text]
        return (STAY, text) if cont is None else (NEXT, cont)

    def nullable(self, prefix: str) -> bool:
        return self.accept and not prefix

    def shortest(self, prefix: str, roomy: bool = False) -> str:
        key = (prefix, roomy)
        if key not in self._short:
            best = [t[len(prefix):] + seq_shortest(c, roomy) for t, c in self.options if t.startswith(prefix)]
            if self.accept and not prefix:
                best.append("")
            self._short[key] = (max if roomy and self.roomy else min)(best, key=len)
        return self._short[key]

    def exits(self, prefix: str) -> tuple[str, ...]:
        return tuple(t[len(prefix):] for t, _ in self.options if t.startswith(prefix))

    def __repr__(self) -> str:
        return f"Choice({[t for t, _ in self.options]}{', accept' if self.accept else ''})"


class _Space(Element):
    """An optional single space (JSON ``": "`` and ``":"``, ``Action: x`` and ``Action:x``)."""

    __slots__ = ()

    def feed(self, loc: int, ch: str) -> Result:
        return (NEXT, ()) if ch == " " else (PASS, ())

    def nullable(self, loc: int) -> bool:
        return True

    def leads(self, loc: int) -> tuple[str, ...]:
        return ("", " ")

    def __repr__(self) -> str:
        return "W"


W = _Space()


class Str(Element):
    """A JSON string value with its quotes; free text inside (escapes checked). ``nonempty``: it must hold a
    non-space character (a final answer the parser would otherwise reject)."""

    __slots__ = ("nonempty",)
    # local states: 0 before the opening quote, 1 inside (nothing non-space yet), 2 inside, 3/4 after a backslash
    # (from 1 / from 2), 10 + k: k hex digits of a \\u escape still to come
    OPEN, EMPTY, BODY, ESC_EMPTY, ESC = 0, 1, 2, 3, 4

    def __init__(self, nonempty: bool = False):
        self.nonempty = nonempty

    def feed(self, s: int, ch: str) -> Result:
        if s == 0:
            return (STAY, 1) if ch == '"' else None
        if s in (1, 2):
            if ch == '"':
                return None if (s == 1 and self.nonempty) else (NEXT, ())
            if ch == "\\":
                return (STAY, 3 if s == 1 else 4)
            if ch < " ":
                return None
            return (STAY, 2 if s == 2 or not ch.isspace() else 1)
        if s in (3, 4):
            if ch == "u":
                return (STAY, 14)
            if ch in '"\\/':
                return (STAY, 2)
            return (STAY, s - 2) if ch in "bfnrt" else None
        if ch in "0123456789abcdefABCDEF":  # \\u hex digits
            return (STAY, 2 if s == 11 else s - 1)
        return None

    def shortest(self, s: int, roomy: bool = False) -> str:
        if s == 0:
            return '"."' if self.nonempty else '""'
        if s == 1:
            return '."' if self.nonempty else '"'
        if s == 2:
            return '"'
        if s in (3, 4):
            return '""'
        return "0" * (s - 10) + '"'

    def exits(self, s: int) -> tuple[str, ...]:
        if s in (0, 1, 2):
            return ('"',)
        if s in (3, 4):
            return tuple('"\\/bfnrtu')
        return tuple("0123456789abcdef")

    def sensitive(self, s: int) -> frozenset[str] | None:
        return STRING_SPECIAL if s in (1, 2) else None

    def __repr__(self) -> str:
        return "Str(nonempty)" if self.nonempty else "Str"


class Num(Element):
    """A JSON number: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``; ends at the first other character."""

    __slots__ = ()
    # 0 start, 1 after '-', 2 '0', 3 integer digits, 4 after '.', 5 fraction digits, 6 after e, 7 after e sign, 8 exp
    DONE = frozenset({2, 3, 5, 8})

    @staticmethod
    def _next(s: int, ch: str) -> int | None:
        if ch in DIGITS:
            return {0: 3 if ch != "0" else 2, 1: 3 if ch != "0" else 2, 3: 3, 4: 5, 5: 5, 6: 8, 7: 8, 8: 8}.get(s)
        if ch == "-":
            return {0: 1, 6: 7}.get(s)
        if ch == "+":
            return 7 if s == 6 else None
        if ch == ".":
            return 4 if s in (2, 3) else None
        if ch in "eE":
            return 6 if s in (2, 3, 5) else None
        return None

    def feed(self, s: int, ch: str) -> Result:
        nxt = self._next(s, ch)
        if nxt is not None:
            return (STAY, nxt)
        return (PASS, ()) if s in self.DONE else None

    def nullable(self, s: int) -> bool:
        return s in self.DONE

    def shortest(self, s: int, roomy: bool = False) -> str:
        return "" if s in self.DONE else "0"

    def exits(self, s: int) -> tuple[str, ...]:
        return tuple(c for c in "0123456789.-+eE" if self._next(s, c) is not None)

    def __repr__(self) -> str:
        return "Num"


NUM = Num()


class AnyValue(Element):
    """A JSON string or number (a parameter whose schema gives no type)."""

    __slots__ = ()

    def feed(self, loc: int, ch: str) -> Result:
        if ch == '"':
            return (PASS, (STR,))
        return (PASS, (NUM,)) if ch == "-" or ch in DIGITS else None

    def shortest(self, loc: int, roomy: bool = False) -> str:
        return "0"

    def exits(self, loc: int) -> tuple[str, ...]:
        return ('"', "-", *DIGITS)


STR, STR_NONEMPTY, ANY_VALUE = Str(), Str(nonempty=True), AnyValue()


class Text(Element):
    """Free text to the end of the output (a final answer); ``nonempty``: with a non-space character."""

    __slots__ = ("nonempty",)
    init = False  # seen a non-space character

    def __init__(self, nonempty: bool = True):
        self.nonempty = nonempty

    def feed(self, seen: bool, ch: str) -> Result:
        return (STAY, seen or not ch.isspace())

    def nullable(self, seen: bool) -> bool:
        return seen or not self.nonempty

    def shortest(self, seen: bool, roomy: bool = False) -> str:
        return "" if self.nullable(seen) else "."

    def sensitive(self, seen: bool) -> frozenset[str] | None:
        return frozenset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}{'(nonempty)' if self.nonempty else ''}"


class Line(Text):
    """Free text up to the end of the line (the newline belongs to what follows); ``nonempty``: with a non-space
    character (a one-line answer: at the end of the output no newline may follow)."""

    __slots__ = ()
    SENSITIVE = frozenset("\n")

    def __init__(self, nonempty: bool = False):
        super().__init__(nonempty)

    def feed(self, seen: bool, ch: str) -> Result:
        if ch == "\n":
            return (PASS, ()) if self.nullable(seen) else None
        return (STAY, seen or not ch.isspace())

    def sensitive(self, seen: bool) -> frozenset[str] | None:
        return self.SENSITIVE


LINE, LINE_NONEMPTY = Line(), Line(nonempty=True)


class Until(Element):
    """Free text up to the first of some markers (the marker included), then that marker's continuation.

    ``accept``: the output may also end inside the text, once it holds a non-space character (ModelScope: plain
    text is an answer). ``nonempty``: a marker only counts after a non-space character (an XML answer the parser
    would read as empty otherwise). ``forbid``: strings the text may not contain (another field's opening tag, which
    the parser would read as that field: a tool smuggled into a thought).
    Local state: (seen a non-space character, the longest tail of the text that begins a marker or forbidden string).
    """

    __slots__ = ("markers", "accept", "nonempty", "forbid", "_last", "_starts")
    init = (False, "")

    def __init__(self, markers: Sequence[tuple[str, tuple[Element, ...]]], accept: bool = False,
                 nonempty: bool = False, forbid: Sequence[str] = ()):
        self.markers = tuple(markers)
        self.accept, self.nonempty = accept, nonempty
        self.forbid = tuple(f for f in dict.fromkeys(forbid) if f and f not in {m for m, _ in self.markers})
        self._last = frozenset(m[-1] for m, _ in self.markers) | frozenset(f[-1] for f in self.forbid)
        self._starts = tuple(m for m, _ in self.markers) + self.forbid

    def feed(self, loc: tuple[bool, str], ch: str) -> Result:
        seen, tail = loc
        text = tail + ch
        for marker, cont in self.markers:
            if text.endswith(marker) and (not self.nonempty or seen or _nonspace(text[: -len(marker)])):
                return (NEXT, cont)
        if any(text.endswith(f) for f in self.forbid):
            return None
        rest = _open_tail(text, self._starts)
        return (STAY, (seen or _nonspace(text[: len(text) - len(rest)]), rest))

    def nullable(self, loc: tuple[bool, str]) -> bool:
        return self.accept and (loc[0] or _nonspace(loc[1]))  # an answer that ends here is not empty

    def _completions(self, loc: tuple[bool, str], roomy: bool) -> list[str]:
        seen, tail = loc
        if self.nonempty and not seen:
            return ["." + m + seq_shortest(c, roomy) for m, c in self.markers]
        out = []
        for marker, cont in self.markers:
            k = next((k for k in range(min(len(tail), len(marker) - 1), 0, -1) if marker.startswith(tail[-k:])), 0)
            out.append(marker[k:] + seq_shortest(cont, roomy))
        return out

    def shortest(self, loc: tuple[bool, str], roomy: bool = False) -> str:
        ends = [""] if self.nullable(loc) else ["."] if self.accept else []
        return min(ends + self._completions(loc, roomy), key=len)

    def exits(self, loc: tuple[bool, str]) -> tuple[str, ...]:
        """The rest of every marker the text may be in the middle of, and every whole marker."""
        seen, tail = loc
        if self.nonempty and not seen:
            return ()
        rests = []
        for marker, _ in self.markers:
            for k in range(min(len(tail), len(marker) - 1), -1, -1):  # k: marker characters already written
                if marker.startswith(tail[len(tail) - k:]):
                    rests.append(marker[k:])
        return tuple(dict.fromkeys(rests))

    def sensitive(self, loc: tuple[bool, str]) -> frozenset[str] | None:
        return self._last

    def plain_loc(self, loc: tuple[bool, str]) -> tuple[bool, str]:
        return (loc[0], "")

    def __repr__(self) -> str:
        return f"Until({[m for m, _ in self.markers]})"


def _nonspace(text: str) -> bool:
    return any(not c.isspace() for c in text)


def _open_tail(text: str, strings: Sequence[str]) -> str:
    """The longest tail of ``text`` that begins one of ``strings`` without completing it ("" when none does)."""
    keep = next((k for k in range(len(text), 0, -1) if any(m.startswith(text[-k:]) and k < len(m) for m in strings)),
                0)
    return text[len(text) - keep:]


# ---------------------------------------------------------------------------------------------------- states

class Guard:
    """Strings the output must never contain, wherever they would start: the end-of-turn markers every parser cuts
    at and the format's stop strings (the loop stops generating there). Tracked as the longest tail of the text
    that begins one of them (usually empty), so free text cannot smuggle one in."""

    __slots__ = ("markers", "last", "_first", "_memo")

    def __init__(self, markers: Iterable[str]):
        self.markers = tuple(m for m in dict.fromkeys(markers) if m)
        self.last = frozenset(m[-1] for m in self.markers)
        self._first = frozenset(m[0] for m in self.markers)
        self._memo: dict[tuple[str, str], str | None] = {}

    def update(self, tail: str, ch: str) -> str | None:
        """The new tail after ``ch``; None when ``ch`` completes a guarded string."""
        if not tail and ch not in self._first:
            return ""
        key = (tail, ch)
        if key not in self._memo:
            text = tail + ch
            if any(text.endswith(m) for m in self.markers):
                self._memo[key] = None
            else:
                self._memo[key] = _open_tail(text, self.markers)
        return self._memo[key]

    def __repr__(self) -> str:
        return f"Guard({list(self.markers)})"


NO_GUARD = Guard(())

# (element | None, its local state, rest: the elements still to come, guard, guard tail); element None: the end
State = tuple


def enter(seq: tuple[Element, ...], guard: Guard = NO_GUARD, tail: str = "") -> State:
    return (seq[0], seq[0].init, seq[1:], guard, tail) if seq else (None, None, (), guard, tail)


def step(state: State, ch: str) -> State | None:
    """The state after one more character, or None when the grammar does not allow it here."""
    el, loc, rest, guard, tail = state
    tail = guard.update(tail, ch)
    if tail is None:
        return None
    while el is not None:
        res = el.feed(loc, ch)
        if res is None:
            return None
        kind, value = res
        if kind == STAY:
            return (el, value, rest, guard, tail)
        if kind == NEXT:
            return enter(value + rest, guard, tail)
        el, loc, rest, _, _ = enter(value + rest)  # PASS: the next element reads the character
    return None


def feed_text(state: State | None, text: str) -> State | None:
    for ch in text:
        if state is None:
            return None
        state = step(state, ch)
    return state


@lru_cache(maxsize=65536)
def seq_shortest(seq: tuple[Element, ...], roomy: bool = False) -> str:
    return "".join(e.shortest(e.init, roomy) for e in seq)


@lru_cache(maxsize=65536)
def seq_nullable(seq: tuple[Element, ...]) -> bool:
    return all(e.nullable(e.init) for e in seq)


def accepting(state: State) -> bool:
    """True when the output may end here."""
    el, loc, rest = state[:3]
    return el is None or (el.nullable(loc) and seq_nullable(rest))


def shortest(state: State, *, plain: bool = False, roomy: bool = False) -> str:
    """The shortest text that completes the grammar from ``state``. ``plain``: after any plain free text (an upper
    bound); ``roomy``: with the longest option at every roomy choice (a tool name; a call or an answer), so that
    free text closed when this no longer fits leaves the model every option of the next decision."""
    el, loc, rest = state[:3]
    if el is None:
        return ""
    return el.shortest(el.plain_loc(loc) if plain else loc, roomy) + seq_shortest(rest, roomy)


def expect(state: State) -> tuple[list[str], frozenset[str] | None]:
    """What may come next: strings a non-plain continuation must agree with, and the free-text characters that
    need checking (None: no free text here, so only continuations that agree with the strings are allowed; the
    guard's last characters are always among them)."""
    strings: list[str] = []
    sensitive = None
    leads: tuple[str, ...] = ("",)
    el, loc, rest, guard, _ = state
    while el is not None:
        strings += [lead + x for lead in leads for x in el.exits(loc)]
        own = el.sensitive(loc)
        if own is not None and sensitive is None and "" in leads:
            sensitive = own | guard.last
        if not el.nullable(loc):
            break
        leads = tuple(dict.fromkeys(lead + m for lead in leads for m in el.leads(loc)))
        el, loc, rest, _, _ = enter(rest)
    return list(dict.fromkeys(strings)), sensitive


@dataclass(frozen=True, eq=False)
class Grammar:
    """A format's call grammar for one set of offered tools (see :meth:`labkit.formats.OutputFormat.call_grammar`);
    ``guard``: strings the output may never contain (see :class:`Guard`)."""

    format: str
    tools: tuple[str, ...]
    seq: tuple[Element, ...]
    guard: Guard = NO_GUARD

    def start(self) -> State:
        return enter(self.seq, self.guard)

    def accepts(self, text: str) -> bool:
        """True when ``text`` is a whole output this grammar allows."""
        state = feed_text(self.start(), text)
        return state is not None and accepting(state)

    def allows_prefix(self, text: str) -> bool:
        """True when ``text`` can still be completed into an output this grammar allows."""
        return feed_text(self.start(), text) is not None


# ---------------------------------------------------------------------------------------------------- tools

@dataclass(frozen=True)
class ToolShape:
    """What guiding needs of a tool: its name, argument keys (schema order), required keys and value kinds."""

    name: str
    keys: tuple[str, ...]
    required: tuple[str, ...] = ()
    kinds: tuple[tuple[str, Any], ...] = ()  # (key, "string" | "number" | "any" | tuple of enum values)

    def kind(self, key: str) -> Any:
        return dict(self.kinds).get(key, "any")


def _kind(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return "any"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                               for v in enum):
        return tuple(enum)
    typ = schema.get("type")
    if typ == "string":
        return "string"
    if typ in ("number", "integer"):
        return "number"
    return "any"


def tool_shapes(tools: Any) -> tuple[ToolShape, ...]:
    """Shapes of the offered tools: a ToolRegistry, Tools, or function-spec dicts (``{"name", "parameters",
    "required"}`` or OpenAI's ``{"type": "function", "function": {...}}``); duplicates keep the first."""
    shapes: dict[str, ToolShape] = {}
    for tool in [] if tools is None else list(tools):
        if isinstance(tool, Mapping):
            spec = tool.get("function", tool) if tool.get("type") == "function" else tool
            name, params, required = spec.get("name"), spec.get("parameters") or {}, spec.get("required")
        else:
            name, params, required = getattr(tool, "name", None), getattr(tool, "parameters", {}) or {}, \
                getattr(tool, "required", None)
        if not isinstance(name, str) or not name or name in shapes:
            continue
        props = params.get("properties") or {} if isinstance(params, Mapping) else {}
        required = required if required is not None else (params.get("required") if isinstance(params, Mapping)
                                                           else None)
        keys = tuple(str(k) for k in props)
        req = tuple(k for k in (required or []) if k in keys)
        shapes[name] = ToolShape(name, keys, req, tuple((k, _kind(props[k])) for k in keys))
    return tuple(shapes.values())


def value_element(kind: Any) -> Element:
    """The grammar of one argument value: a JSON string, number, enum member, or either of the first two."""
    if isinstance(kind, tuple):
        return _enum(kind)
    return {"string": STR, "number": NUM}.get(kind, ANY_VALUE)


@lru_cache(maxsize=1024)
def _enum(values: tuple[Any, ...]) -> Choice:
    return Choice([(json.dumps(v, ensure_ascii=False), ()) for v in dict.fromkeys(values)])


def _jkey(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


@lru_cache(maxsize=4096)
def json_object(shape: ToolShape, used: frozenset[str] = frozenset(), first: bool = True) -> Choice:
    """The tool's arguments as one JSON object: keys from its schema (each at most once, the required ones before
    the object closes), values by the schema's type."""
    options: list[tuple[str, tuple[Element, ...]]] = []
    closable = set(shape.required) <= used
    if closable:
        options.append(("{}" if first else "}", ()))
    for key in shape.keys:
        if key in used:
            continue
        cont = (W, value_element(shape.kind(key)), json_object(shape, used | {key}, False))
        if first:
            options.append(("{" + _jkey(key) + ":", cont))
        else:
            options += [(", " + _jkey(key) + ":", cont), ("," + _jkey(key) + ":", cont)]
    return Choice(options)


@lru_cache(maxsize=4096)
def yaml_block(shape: ToolShape, key_text: Callable[[str], str], used: frozenset[str] = frozenset(),
               first: bool = True) -> Choice:
    """The tool's arguments as indented ``key: <JSON value>`` lines (declared yaml formats; ``key_text`` writes a
    key as the format does), `` {}`` when empty; the output may end once the required keys are there."""
    options: list[tuple[str, tuple[Element, ...]]] = []
    closable = set(shape.required) <= used
    if first and closable:
        options.append((" {}", ()))
    for key in shape.keys:
        if key not in used:
            options.append(("\n  " + key_text(key) + ":",
                            (W, value_element(shape.kind(key)), yaml_block(shape, key_text, used | {key}, False))))
    return Choice(options, accept=closable and not first)


def tool_choice(shapes: Sequence[ToolShape], terminator: str,
                after: Callable[[ToolShape], tuple[Element, ...]]) -> Choice:
    """One of the offered tools' names followed by ``terminator`` (a closing quote, a newline, ``</tool>``), then
    ``after(tool)`` (its arguments)."""
    return Choice([(s.name + terminator, after(s)) for s in shapes if terminator not in s.name and s.name],
                  roomy=True)


def json_fields(fields: Sequence[str], *, first: bool = True) -> tuple[Element, ...]:
    """``{"a": <string>, "b": <string>`` ... (the opening brace when ``first``; no closing brace)."""
    out: list[Element] = []
    for i, field in enumerate(fields):
        out += [Lit(("{" if first and i == 0 else ", " if i else "") + _jkey(field) + ":"), W, STR]
    return _merge(out)


def _merge(seq: Sequence[Element]) -> tuple[Element, ...]:
    """Join neighbouring literals (fewer states) and make ', ' also accept ','."""
    out: list[Element] = []
    for el in seq:
        if isinstance(el, Lit) and out and isinstance(out[-1], Lit):
            out[-1] = Lit(out[-1].text + el.text)
        else:
            out.append(el)
    final: list[Element] = []
    for el in out:  # ", " between JSON fields: the space is optional
        if isinstance(el, Lit) and ", " in el.text:
            parts = el.text.split(", ")
            for j, part in enumerate(parts):
                if part:
                    final.append(Lit(part + ("," if j < len(parts) - 1 else "")))
                elif j < len(parts) - 1:
                    final.append(Lit(","))
                if j < len(parts) - 1:
                    final.append(W)
        else:
            final.append(el)
    return tuple(final)


def seq(*parts: Element | str | Sequence[Element]) -> tuple[Element, ...]:
    """A sequence from literals (str), elements and sequences; ``", "`` in literals also accepts ``","``."""
    flat: list[Element] = []
    for part in parts:
        if isinstance(part, str):
            flat.append(Lit(part))
        elif isinstance(part, Element):
            flat.append(part)
        else:
            flat += list(part)
    return _merge(flat)

