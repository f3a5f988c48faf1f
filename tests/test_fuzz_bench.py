"""bench/fuzz_hostile.py kept alive: every target runs its quick subset (two values of each hostile family, 10 KB
strings) in this process with 0 exceptions, and the tally counts what it must. Timings and memory belong to the
bench (bench/README.md), not here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fuzz_hostile as fuzz  # noqa: E402

from labkit.errors import DataFileError  # noqa: E402

FAMILIES = {"deep nesting", "huge numbers", "5 MB strings", "NUL", "lone surrogates", "empty or whitespace"}


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_every_target_survives_the_quick_hostile_set(target: str) -> None:
    tally = fuzz.Tally(target)
    fuzz.RUNNERS[target](tally, 0.01, True)
    s = tally.summary()
    assert s["exceptions"] == 0, s["failures"]
    assert s["inputs"] == s["handled"] + s["failed"] + s["refused"] > 20
    if target in ("parsers", "json", "files", "scorer", "agent", "tools"):
        assert FAMILIES <= {label.split(" / ")[0] for label in (r["case"] for r in tally.rows)}


def test_the_tally_counts_refusals_exceptions_and_broken_promises() -> None:
    tally = fuzz.Tally("self-check")
    with tally.case("handled"):
        pass
    with tally.case("typed failure") as c:
        c.outcome = "failed"
    with tally.case("clean refusal"):
        raise DataFileError("x.jsonl", "bad", line=3)
    with tally.case("a raw exception"):
        raise RecursionError("maximum recursion depth exceeded")
    with tally.case("a broken promise"):
        raise fuzz.Broken("a prompt of 5,000,000 characters")
    with tally.case("a huge refusal"):
        raise DataFileError("x.yaml", "y" * 5000)
    s = tally.summary()
    assert (s["inputs"], s["handled"], s["failed"], s["refused"], s["exceptions"]) == (6, 1, 1, 1, 3)
    assert [f.split(":")[0] for f in s["failures"]] == ["a raw exception", "a broken promise", "a huge refusal"]
    assert fuzz.table([s]).count("\n") == 2 and "**3**" in fuzz.table([s])
