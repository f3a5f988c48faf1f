"""Checks that a JSON object is the TypedDict that types it (shared by the record-type tests)."""

from __future__ import annotations

from typing import Any


def shape_errors(rec: Any, typ: Any, where: str) -> list[str]:
    """What keeps a JSON object from being the TypedDict ``typ``: missing required keys, keys it does not name."""
    required, known = typ.__required_keys__, typ.__required_keys__ | typ.__optional_keys__
    return ([f"{where}: missing {sorted(required - set(rec))}"] if required - set(rec) else []) + \
        ([f"{where}: unknown {sorted(set(rec) - known)}"] if set(rec) - known else [])


def has_shape(value: Any, td: Any, *, ordered: bool = False) -> None:
    """``value`` is a dict whose keys are ``td``'s (all required ones, no undeclared one); ``ordered``: in the
    order ``td`` declares them."""
    assert isinstance(value, dict), value
    assert not (errors := shape_errors(value, td, td.__name__)), errors
    if ordered:
        assert list(value) == [k for k in td.__annotations__ if k in value], (td.__name__, list(value))
