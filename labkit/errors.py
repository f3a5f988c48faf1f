"""Exceptions that tell the user exactly which file, line and field is wrong."""

from __future__ import annotations

import os
from pathlib import Path

SECRET_ENV = ("OPENAI_API_KEY",)
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key read from a file or passed in) so :func:`scrub` hides it everywhere."""
    if value and len(value) >= 8:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    """``text`` with every known secret (registered ones, and ``OPENAI_API_KEY`` from the environment) as ``***``."""
    secrets = _SECRETS | {v for k in SECRET_ENV if len(v := os.environ.get(k) or "") >= 8}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class LabkitError(Exception):
    """Base class for every error labkit raises on purpose. Its message never shows a known secret."""

    def __init__(self, *args: object):
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class DataFileError(LabkitError):
    """A data file (JSONL, YAML template, config) is malformed.

    The message always names the file, and the line and field when known.
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, field: str | None = None):
        self.path = Path(path)
        self.line = line
        self.field = field
        where = str(self.path)
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" [field {field!r}]"
        super().__init__(f"{where}: {message}")


class UnknownNameError(LabkitError, KeyError):
    """A template, tool, model or format name that labkit does not know; lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(known)) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]
