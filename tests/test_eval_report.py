"""Report tables, plots and the general-ability check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labkit.evaluate.report import (
    bleu_table,
    general_ability,
    plot_bars,
    plot_radar,
    score_table,
    seen_unseen,
    template_breakdown,
)
from labkit.evaluate.scorer import ScoreReport, ScoreRow, overall
from labkit.types import ChatResult, Message


def make_report(plan_seen: float, plan_unseen: float) -> ScoreReport:
    rows = [ScoreRow("q1", "plantooluse", "react", "seen", "Planning", plan_seen, plan_seen),
            ScoreRow("q1", "plantooluse", "meta_xml_en", "unseen", "Planning", plan_unseen, plan_unseen),
            ScoreRow("q1", "plantooluse", "react", "seen", "Tool-use", 1.0, None)]
    dims = {"Planning": 50 * (plan_seen + plan_unseen), "Tool-use": 100.0, "Reflection": 0.0, "Concluding": 0.0,
            "Profile": 0.0}
    return ScoreReport(rows, dims, overall(dims), {"Planning": 50.0}, {d: 1 for d in dims})


def test_tables_and_plots(tmp_path: Path) -> None:
    reports = {"base": make_report(0.0, 0.0), "tuned": make_report(1.0, 0.5)}
    table = score_table(reports)
    assert list(table.columns) == ["Planning", "Tool-use", "Reflection", "Concluding", "Profile", "Overall"]
    assert table.loc["tuned", "Planning"] == 75.0 and table.loc["tuned", "Overall"] == pytest.approx(0.25 * 75 + 35)
    assert bleu_table(reports).loc["tuned", "Planning"] == 50.0
    br = template_breakdown(reports)
    assert br[(br.model == "tuned") & (br.template == "meta_xml_en")]["score"].item() == 50.0
    su = seen_unseen(reports)
    assert su.loc[("tuned", "seen"), "Planning"] == 100.0 and su.loc[("tuned", "unseen"), "Planning"] == 50.0
    plot_bars(table, tmp_path / "bars.png")
    plot_radar(table, tmp_path / "radar.png")
    assert (tmp_path / "bars.png").stat().st_size > 1000 and (tmp_path / "radar.png").stat().st_size > 1000


class EchoModel:
    name = "echo"

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [ChatResult(m[-1]["content"], self.name) for m in batch]


def test_general_ability_rouge(tmp_path: Path) -> None:
    samples = [{"instruction": "把这句话原样输出", "output": "把这句话原样输出"}, {"instruction": "abc", "output": "xyz"}]
    res, stats = general_ability(EchoModel(), samples, tmp_path / "c.jsonl")
    assert res == {"samples": 2, "ROUGE-L": 50.0, "BLEU": pytest.approx(50.0, abs=0.01)}
    assert stats.generated == 2
