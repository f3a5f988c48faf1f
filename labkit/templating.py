"""Bounded Jinja2 and YAML for untrusted template files (a Meta-Agent writes them): loading and rendering one can
neither run code nor exhaust time, memory or output.

Jinja2's immutable sandbox already refuses ``__attr__`` climbing, mutation of passed values and ``range`` past
100,000 items. :class:`BoundedEnvironment` adds one budget per render (:func:`budget`), charged by the template's
own work and checked as it goes, instead of a list of forbidden templates:

* operations: every loop iteration, call (macros included), filter and output part costs one; past
  :data:`MAX_OPS`, or past :data:`MAX_SECONDS` of wall time, the render stops (nested loops, a CPU-burning macro);
* nesting: calls nest at most :data:`MAX_CALL_DEPTH` deep (a self-calling macro stops there, not at Python's
  ``RecursionError``);
* sizes: every string a template builds - ``*``, ``+``, ``%``, ``~``, ``str.format`` (widths included), string
  methods (``center``, ``ljust``, ``zfill``, ``replace``, ``join`` ...), filters (``indent``, ``wordwrap``,
  ``join``, ``tojson`` ...) - is predicted before it is built and refused past the render's string limit
  (:data:`MAX_STRING_CHARS` plus its longest input), as are numbers past :data:`MAX_INT_BITS` bits and integer
  arguments (widths, counts) past the string limit; a value printed or joined is measured first
  (:func:`labkit.bounds.text_size`), so a list of 200,000 references to a long string is never turned into text;
* output: everything written - the prompt itself and every captured block (``{% set %}``, macro bodies,
  ``{% filter %}``) - counts against one output limit (:data:`MAX_OUTPUT_CHARS` plus four times the inputs).

Anything over a limit raises :class:`RenderLimitError` (a Jinja2 ``SecurityError``); the template loader turns it
into a :class:`~labkit.errors.DataFileError` naming the file. :func:`load_yaml` reads a template file with no YAML
aliases (a 1.6 KB alias bomb expands to millions of nodes), at most :data:`MAX_YAML_DEPTH` levels of nesting,
integers of at most :data:`~labkit.bounds.MAX_INT_DIGITS` characters and :data:`MAX_FILE_CHARS` characters.
"""

from __future__ import annotations

import re
import string
import threading
import time
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import update_wrapper, wraps
from typing import Any

import jinja2
import jinja2.sandbox
import yaml
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext
from markupsafe import Markup

from labkit.bounds import MAX_INT_DIGITS, text_size

MAX_OPS = 200_000            # loop iterations + calls + filters + output parts in one render (a prompt needs ~1,000)
MAX_SECONDS = 1.0            # wall time of one render (a prompt takes about a millisecond)
MAX_CALL_DEPTH = 32          # nested calls (macros calling macros)
MAX_STRING_CHARS = 200_000   # a string, list or formatted field a template builds, beyond its longest input
MAX_OUTPUT_CHARS = 200_000   # everything one render writes, beyond four times its inputs
MAX_INT_BITS = 16_384        # about 4,900 decimal digits
MAX_FILE_CHARS = 256_000     # a template file (the built-in ones are under 5,000 characters)
MAX_YAML_DEPTH = 32          # nesting of a template file's YAML


class RenderLimitError(jinja2.sandbox.SecurityError):
    """A template went past a render limit (time, operations, nesting or size)."""


# ---------------------------------------------------------------- the per-render budget

class Budget:
    """What one render may still do; see the module docstring."""

    def __init__(self, input_chars: int = 0, longest_input: int = 0):
        self.ops = 0
        self.depth = 0
        self.output = 0
        self.string_limit = MAX_STRING_CHARS + longest_input
        self.output_limit = MAX_OUTPUT_CHARS + 4 * input_chars
        self.deadline = time.perf_counter() + MAX_SECONDS

    def charge(self, ops: int = 1) -> None:
        self.ops += ops
        if self.ops > MAX_OPS:
            raise RenderLimitError(f"the template does more than {MAX_OPS} operations (loops, calls, filters)")
        if time.perf_counter() > self.deadline:
            raise RenderLimitError(f"rendering the template takes longer than {MAX_SECONDS:g} s")

    def write(self, chars: int) -> None:
        self.output += chars
        if self.output > self.output_limit:
            raise RenderLimitError(f"the template writes more than {self.output_limit} characters")

    def size(self, value: Any, what: str) -> int:
        """``value``'s size as text, refused past the string limit (measured within the limit: bounded cost)."""
        n = text_size(value, self.string_limit)
        self.charge(1 + n // 4096)
        if n > self.string_limit:
            raise RenderLimitError(f"{what} would be longer than {self.string_limit} characters")
        return n


_state = threading.local()


def current() -> Budget:
    """The budget of the render running in this thread (a fresh one outside a render: compile-time folding)."""
    return getattr(_state, "budget", None) or Budget()


@contextmanager
def budget(inputs: Mapping[str, Any] | None = None) -> Iterator[Budget]:
    """One render's budget; the text values of ``inputs`` (the context) raise the string and output limits."""
    sizes = [len(v) for v in (inputs or {}).values() if isinstance(v, str)]
    saved = getattr(_state, "budget", None)
    _state.budget = Budget(sum(sizes), max(sizes, default=0))
    try:
        yield _state.budget
    finally:
        _state.budget = saved


# ---------------------------------------------------------------- size rules for what a template builds

_DIGITS = re.compile(r"\d+")
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_int(value: Any, what: str) -> None:
    b = current()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > b.string_limit:
        raise RenderLimitError(f"{what} is larger than {b.string_limit}")


def _check_args(args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    for value in (*args, *kwargs.values()):
        _check_int(value, f"an integer argument of {what}")


def _percent(fmt: str, args: Any, what: str) -> None:
    """``fmt % args``: widths and precisions, and every conversion filled with the largest argument."""
    b = current()
    matches = list(_PERCENT.finditer(fmt))
    widths = 0
    for m in matches:
        for g in m.groups():
            if g == "*":
                raise RenderLimitError(f"'*' widths are not allowed in {what}")
            if g:
                _check_int(int(g) if len(g) < 20 else b.string_limit + 1, f"a width in {what}")
                widths += int(g)
    items = args.values() if isinstance(args, Mapping) else args if isinstance(args, (tuple, list)) else (args,)
    largest = max((b.size(v, what) for v in items), default=0)
    if len(fmt) + widths + len(matches) * largest > b.string_limit:
        raise RenderLimitError(f"{what} would be longer than {b.string_limit} characters")


def _materialise(value: Any) -> Any:
    """A generator or iterator as a list (charged per item), so its size can be measured before it is used."""
    if isinstance(value, Iterator) and not isinstance(value, LoopContext):
        b, items = current(), []
        for item in value:
            b.charge()
            items.append(item)
            if len(items) > b.string_limit:
                raise RenderLimitError(f"a sequence longer than {b.string_limit} items")
        return items
    return value


def _joined(parts: Any, sep: Any, what: str) -> None:
    b = current()
    n = len(parts) if hasattr(parts, "__len__") else 0
    if b.size(parts, what) + n * len(str(sep)) > b.string_limit:
        raise RenderLimitError(f"{what} would be longer than {b.string_limit} characters")


def _replaced(s: Any, old: Any, new: Any, count: Any, what: str) -> None:
    b = current()
    s, old, new = str(s), str(old), str(new)
    hits = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(s) + hits * max(len(new) - len(old), 0) > b.string_limit:
        raise RenderLimitError(f"{what} would be longer than {b.string_limit} characters")


def _grown(base: int, extra: int, what: str) -> None:
    b = current()
    if base + extra > b.string_limit:
        raise RenderLimitError(f"{what} would be longer than {b.string_limit} characters")


def _lines(s: Any) -> int:
    return str(s).count("\n") + 1


# Filters whose result can outgrow their input by more than a constant factor: the check before they run.
# Each gets the filter's arguments after the value (as the filter declares them).
_FILTER_RULES: dict[str, Any] = {
    "join": lambda v, d="", attribute=None: _joined(v, d, "joining"),
    "replace": lambda s, old, new, count=None: _replaced(s, old, new, count, "replace"),
    "indent": lambda s, width=4, first=False, blank=False: _grown(
        len(str(s)), _lines(s) * (len(width) if isinstance(width, str) else width), "indent"),
    "wordwrap": lambda s, width=79, brk=True, wrapstring=None, hyphens=True: _grown(
        len(str(s)), len(str(s)) * len(wrapstring or "\n"), "wordwrap"),
    "format": lambda value, *args, **kwargs: _percent(str(value), kwargs or args, "format"),
    "tojson": lambda value, indent=None: _grown(
        0, current().size(value, "tojson") * (1 + (indent if isinstance(indent, int) else 0)), "tojson"),
}

# str methods likewise (integer arguments such as widths are bounded for every call).
_METHOD_RULES: dict[str, Any] = {
    "join": lambda s, parts: _joined(parts, s, "str.join"),
    "replace": lambda s, old, new, count=-1: _replaced(s, old, new, count, "str.replace"),
    "expandtabs": lambda s, tabsize=8: _grown(len(s), s.count("\t") * tabsize, "str.expandtabs"),
    "translate": lambda s, table: _grown(
        0, len(s) * max((len(v) for v in getattr(table, "values", lambda: [])() if isinstance(v, str)), default=1),
        "str.translate"),
}


def _check_result(value: Any, what: str) -> Any:
    if isinstance(value, (str, list, tuple, dict, bytes)) and len(value) > current().string_limit:
        raise RenderLimitError(f"{what} is longer than {current().string_limit} characters")
    return value


def _bounded_filter(name: str, func: Any) -> Any:
    from jinja2.utils import _PassArg

    skip = 1 if _PassArg.from_obj(func) is not None else 0
    rule = _FILTER_RULES.get(name)

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        b = current()
        b.charge()
        if len(args) > skip:
            args = (*args[:skip], _materialise(args[skip]), *args[skip + 1:])
            b.size(args[skip], f"the value given to the filter {name!r}")
        _check_args(args[skip + 1:], kwargs, f"the filter {name!r}")
        if rule is not None and len(args) > skip:
            rule(*args[skip:], **kwargs)
        return _check_result(func(*args, **kwargs), f"the result of the filter {name!r}")

    return wrapper


def _bounded_test(func: Any) -> Any:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current().charge()
        return func(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------- code generation hooks

class _BoundedCodeGenerator(CodeGenerator):
    """Routes what the sandbox does not see through the environment: loop iteration (``labkit_iter``), ``~``
    (``labkit_concat``) and the buffers of captured blocks and macros (``labkit_buffer``)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("labkit_iter"), [node.iter], [], None, None,
                               lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.labkit_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.labkit_buffer()")


class _Buffer(list):
    """A captured block's output: every part is charged to the render's output limit as it is written."""

    def append(self, part: Any) -> None:
        b = current()
        b.charge()
        b.write(len(part))
        super().append(part)

    def extend(self, parts: Any) -> None:
        for part in parts:
            self.append(part)


class _BoundedFormatterMixin:
    """``str.format``: fields measured before they are converted, widths and precisions bounded, and the total."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._written = 0

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        obj, first = super().get_field(field_name, args, kwargs)  # type: ignore[misc]
        current().size(obj, "a str.format field")
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        for digits in _DIGITS.findall(format_spec):
            _check_int(int(digits) if len(digits) < 20 else current().string_limit + 1,
                       "a width or precision in str.format")
        out = super().format_field(value, format_spec)  # type: ignore[misc]
        self._written += len(out)
        if self._written > current().string_limit:
            raise RenderLimitError(f"str.format would be longer than {current().string_limit} characters")
        return out


class _BoundedFormatter(_BoundedFormatterMixin, jinja2.sandbox.SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFormatterMixin, jinja2.sandbox.SandboxedEscapeFormatter):
    pass


class BoundedEnvironment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits of the module docstring."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **kwargs: Any):
        super().__init__(finalize=self._finalize, **kwargs)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: _bounded_test(f) for name, f in self.tests.items()}
        self.globals = {"range": self.globals["range"]}  # no cycler/joiner/namespace/lipsum objects to climb from

    # -- hooks the generated code calls
    @staticmethod
    def concat(parts: Any) -> str:  # type: ignore[override]  # the root output and every captured buffer
        b, out = current(), []
        for part in parts:
            if not isinstance(parts, _Buffer):  # a buffer charged its parts as they were written
                b.charge()
                b.write(len(part))
            out.append(part)
        return "".join(out)

    @staticmethod
    def labkit_buffer() -> _Buffer:
        return _Buffer()

    @staticmethod
    def labkit_iter(iterable: Any) -> Iterator[Any]:
        b = current()
        for item in iterable:
            b.charge()
            yield item

    @staticmethod
    def labkit_concat(parts: tuple[Any, ...]) -> str:
        b = current()
        b.charge()
        if sum(b.size(p, "joining with ~") for p in parts) > b.string_limit:
            raise RenderLimitError(f"joining with ~ would be longer than {b.string_limit} characters")
        return "".join(map(str, parts))

    @staticmethod
    def _finalize(value: Any) -> Any:
        if not isinstance(value, str):
            current().size(value, "a printed value")
        return value

    # -- sandbox hooks
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        b = current()
        b.charge()
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
        if ints and operator == "**" and right > 0 and max(abs(left).bit_length(), 1) * right > MAX_INT_BITS:
            raise RenderLimitError(f"a power with more than {MAX_INT_BITS} bits")
        if ints and operator == "*" and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise RenderLimitError(f"a product with more than {MAX_INT_BITS} bits")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > b.string_limit:
                    raise RenderLimitError(f"repeating a {len(seq)}-item value {n} times is too large")
        if operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _grown(len(left), len(right), "'+'")
        if operator == "%" and isinstance(left, str):
            _percent(left, right, "'%' formatting")
        return _check_result(super().call_binop(context, operator, left, right), f"the result of {operator!r}")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        b = current()
        b.charge()
        name = getattr(__obj, "__name__", type(__obj).__name__)
        _check_args(args, kwargs, f"{name}()")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes)) and isinstance(__obj, types.BuiltinMethodType):
            if name == "join" and args:
                args = (_materialise(args[0]), *args[1:])
            rule = _METHOD_RULES.get(name)
            if rule is not None:
                rule(owner, *args, **kwargs)
        b.depth += 1
        try:
            if b.depth > MAX_CALL_DEPTH:
                raise RenderLimitError(f"calls nest deeper than {MAX_CALL_DEPTH} levels (a macro calling itself?)")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            b.depth -= 1
        return _check_result(result, f"the result of {name}()")

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` / ``format_map`` with the bounded formatter (Jinja2's own wrapper, other formatter)."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or \
                value.__name__ not in ("format", "format_map") or not isinstance(value.__self__, str):
            return None
        f_self = value.__self__
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            formatter: string.Formatter = (_BoundedEscapeFormatter(self, escape=f_self.escape)
                                           if isinstance(f_self, Markup) else _BoundedFormatter(self))
            return type(f_self)(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)


# ---------------------------------------------------------------- YAML

class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, with bounded nesting and integers."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in a template file",
                                              event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: Any) -> int:
        """An integer written in at most :data:`~labkit.bounds.MAX_INT_DIGITS` characters (a longer one would meet
        Python's int-string limit as a raw ``ValueError``, or be no number a template field can use)."""
        text = str(node.value)
        if len(text) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, f"an integer of {len(text)} characters (at most "
                                                    f"{MAX_INT_DIGITS})", node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def load_yaml(text: str) -> Any:
    """A template file's YAML, bounded (see the module docstring); ``yaml.YAMLError`` when it is refused."""
    if len(text) > MAX_FILE_CHARS:
        raise yaml.YAMLError(f"the file has {len(text)} characters; a template file has at most {MAX_FILE_CHARS}")
    return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass


ENV = BoundedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
