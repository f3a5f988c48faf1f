"""JSON helpers shared by the formats (TEMPORARY shim over labkit.parsing until its code moves here)."""

from __future__ import annotations

import functools
from typing import Any

from labkit import parsing as _p
from labkit.formats.base import Fail


def _convert(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except _p._Fail as fail:
            raise Fail(fail.code, fail.message) from None
    return wrapper


load_json_object = _convert(_p._load_json_object)
json_args = _convert(_p._args)
name_text = _convert(_p._name)
text_value = _p._text
first_parameter = _p._first_parameter
