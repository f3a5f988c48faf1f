"""The template text in the bounded Jinja2 sandbox (:mod:`labkit.templating`): compile a template file's text and
render it, every failure a :class:`~labkit.errors.DataFileError` naming the file (a syntax error with its line in the
YAML file), never a traceback from Jinja2 nor anything the sandbox refuses being run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox

from labkit.bounds import clip
from labkit.errors import DataFileError
from labkit.templating import ENV, RenderLimitError, budget


def compile_text(path: Path, text: str) -> jinja2.Template:
    """The compiled template text of the file ``path``."""
    try:
        return ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise DataFileError(path, f"Jinja2 syntax error: {exc.message}", line=_yaml_line(path, exc.lineno),
                            field="template") from None
    except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:  # e.g. 10,000 nested brackets
        raise DataFileError(path, f"cannot compile: {type(exc).__name__} (nested too deeply?)",
                            field="template") from None


def render_text(path: Path, compiled: jinja2.Template, context: dict[str, Any]) -> str:
    """``compiled`` rendered with ``context`` within the render budget (:func:`labkit.templating.budget`)."""
    try:
        with budget(context):
            return compiled.render(**context)
    except RenderLimitError as exc:
        raise DataFileError(path, f"the template goes past a render limit: {exc}", field="template") from None
    except jinja2.sandbox.SecurityError as exc:
        raise DataFileError(path, f"unsafe template, refused by the sandbox: {exc}", field="template") from None
    except jinja2.TemplateError as exc:
        raise DataFileError(path, f"cannot render: {clip(str(exc), 500)}", field="template") from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:  # e.g. {{ 1 / 0 }}, {{ goal + 1 }}
        raise DataFileError(path, f"cannot render: {type(exc).__name__}: {clip(str(exc), 500)}",
                            field="template") from None
    except RecursionError:  # a guard missed: still the file's fault, not the caller's
        raise DataFileError(path, "cannot render: RecursionError", field="template") from None


def _yaml_line(path: Path, template_line: int | None) -> int | None:
    """Map a line inside the ``template`` text to the YAML file's line (best effort)."""
    if template_line is None:
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines, 1):
        if line.startswith("template:"):
            return i + template_line
    return None
