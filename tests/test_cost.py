"""The course note's cost table, pinned, and the FLOPs-based estimate."""

from __future__ import annotations

import pytest

from labkit.train.cost import NOTE_ROWS, estimate, estimate_hours, note_table


def test_note_rows_are_reproduced_exactly():
    table = note_table()
    assert table["成本(元)"].tolist() == [17371.0, 26681.9, 88939.5]
    assert table["总时长(h)"].tolist() == [125, 96, 80]
    assert [r.gpus for r in NOTE_ROWS] == [4, 8, 32]


def test_implied_mfu_and_round_trip():
    mfus = [r.mfu() for r in NOTE_ROWS]
    assert mfus == pytest.approx([0.1757, 0.1831, 0.1412], abs=5e-4)
    for row, mfu in zip(NOTE_ROWS, mfus):  # estimating at the implied MFU gives back the note's hours and cost
        new = estimate(row.model, row.params, row.tokens, row.epochs, row.gpus, mfu)
        assert new.hours == pytest.approx(row.hours) and new.cost_cny == row.cost_cny


def test_estimate_scales_and_rejects_nonsense():
    h1 = estimate_hours(7e9, 470e6, 5, 4, 0.2)
    assert estimate_hours(7e9, 470e6, 5, 8, 0.2) == pytest.approx(h1 / 2)
    assert estimate_hours(14e9, 470e6, 5, 4, 0.2) == pytest.approx(2 * h1)
    with pytest.raises(ValueError):
        estimate_hours(7e9, 470e6, 5, 0, 0.2)
