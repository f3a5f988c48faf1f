"""calculator: a safe arithmetic evaluator over Python's AST (numbers, operators and an allow-list of functions).

Bounded in time as well as in what it may touch: every intermediate value must be a finite number of at most
:data:`MAX_DIGITS` digits, and an operation whose result would be larger (a power, ``round`` with a huge
``ndigits``, ``factorial``) is refused *before* it is computed, so no expression of :data:`MAX_LENGTH` characters
runs for long (``round(1, -10**8)`` would build a 100-million-digit integer).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import fmt_num

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "log": math.log, "log10": math.log10,
    "log2": math.log2, "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan, "floor": math.floor,
    "ceil": math.ceil, "factorial": math.factorial}
CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT, MAX_MAGNITUDE, MAX_LENGTH = 1000, 1e100, 300
MAX_DIGITS = 1000  # any intermediate value; ints up to this size compute in microseconds
_MAX_BITS = int(MAX_DIGITS * math.log2(10)) + 1
_REPLACE = {"×": "*", "÷": "/", "^": "**", "（": "(", "）": ")", "，": ",", "−": "-", "＋": "+", "％": "%"}


def _bounded(value: float) -> float:
    """``value`` if it is a finite number of at most MAX_DIGITS digits, else ToolInputError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolInputError("result is not a finite number")
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ToolInputError(f"intermediate result has more than {MAX_DIGITS} digits")
    return value


def _check_call(name: str, args: list[float]) -> None:
    """Refuse a function call whose cost or result size would be out of bounds, before it runs."""
    if name == "factorial" and (not args or args[0] > 170):
        raise ToolInputError("factorial argument too large")
    if name == "round" and len(args) > 1 and abs(args[1]) > MAX_DIGITS:
        raise ToolInputError(f"round: ndigits must be between -{MAX_DIGITS} and {MAX_DIGITS}")


def _check_pow(left: float, right: float) -> None:
    if abs(right) > MAX_EXPONENT or abs(left) > MAX_MAGNITUDE:
        raise ToolInputError("exponent too large")
    if isinstance(left, int) and isinstance(right, int) and right > 0 and left.bit_length() * right > _MAX_BITS:
        raise ToolInputError(f"exponent too large (the result would have more than {MAX_DIGITS} digits)")


def _eval(node: ast.AST) -> float:
    return _bounded(_eval_node(node))


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_pow(left, right)
        result = _BINOPS[type(node.op)](left, right)
        if isinstance(result, complex):
            raise ToolInputError("result is not a real number")
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords):
        args = [_eval(a) for a in node.args]
        _check_call(node.func.id, args)
        return FUNCTIONS[node.func.id](*args)
    what = ast.unparse(node) if isinstance(node, ast.AST) else repr(node)
    raise ToolInputError(f"argument 'expression': {what!r} is not allowed; use numbers, + - * / // % ** ( ) "
                         f"and {', '.join(sorted(FUNCTIONS))}")


def evaluate(expression: str) -> float:
    """Evaluate an arithmetic expression safely; ToolInputError explains what is not allowed."""
    text = str(expression).strip()
    for old, new in _REPLACE.items():
        text = text.replace(old, new)
    if not text:
        raise ToolInputError("argument 'expression' is empty")
    if len(text) > MAX_LENGTH:
        raise ToolInputError(f"argument 'expression' is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolInputError(f"argument 'expression': cannot parse {expression!r} as arithmetic") from None
    try:
        value = _eval(tree)
    except ToolInputError:
        raise
    except ZeroDivisionError:
        raise ToolInputError("division by zero") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ToolInputError(f"cannot compute {expression!r}: {exc}") from None
    if abs(value) > MAX_MAGNITUDE:
        raise ToolInputError("result too large")
    return value


def calculator(expression: str) -> str:
    return f"{expression} = {fmt_num(evaluate(expression), 4)}"


TOOLS = [
    Tool(
        name="calculator",
        description="Evaluate an arithmetic expression, e.g. (3+4)*2 or sqrt(16).",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "expression": {"type": "string", "description": "Arithmetic expression to compute"}}},
        returns="The expression and its value.",
        fn=calculator,
        required=["expression"],
    )
]
