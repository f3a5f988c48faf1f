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


def bootstrap_report(scores_by_query: dict[str, float]) -> ScoreReport:
    """Every ability has one record per query with the given score (two templates for Planning)."""
    rows = []
    for q, s in scores_by_query.items():
        for dim, typ in (("Planning", "plantooluse"), ("Tool-use", "plantooluse"), ("Reflection", "reflextion"),
                         ("Concluding", "conclusion"), ("Profile", "profile")):
            rows.append(ScoreRow(f"{q}:{typ}", typ, "react", "seen", dim, s, None))
            if dim == "Planning":
                rows.append(ScoreRow(f"{q}:{typ}", typ, "meta_xml_en", "unseen", dim, 0.0, None))
    return ScoreReport(rows, {}, None, {}, {})


def test_bootstrap_intervals_resample_queries() -> None:
    from labkit.evaluate.report import interval_table, score_intervals

    constant = score_intervals(bootstrap_report({f"q{i}": 0.5 for i in range(10)}), n_boot=500)
    assert constant.loc["Tool-use", "score"] == 50.0
    assert constant.loc["Tool-use", "low"] == constant.loc["Tool-use", "high"] == 50.0  # no spread: no width
    assert constant.loc["Planning", "score"] == 25.0  # mean over the record's two templates
    assert constant.loc["Overall", "units"] == 10 and constant.loc["Tool-use", "records"] == 10

    spread = score_intervals(bootstrap_report({f"q{i}": float(i % 2) for i in range(40)}), n_boot=2000)
    tu = spread.loc["Tool-use"]
    assert tu.score == 50.0 and 30 < tu.low < 45 and 55 < tu.high < 70  # ±1.96·sqrt(.25/40) ≈ ±15.5 points
    # Overall's interval comes from the same draws of queries: its width follows the weighted abilities
    ov = spread.loc["Overall"]
    assert ov.low < ov.score < ov.high
    unseen = score_intervals(bootstrap_report({f"q{i}": 1.0 for i in range(5)}), tag="unseen", n_boot=100)
    assert unseen.loc["Planning", "score"] == 0.0 and pd_isna(unseen.loc["Tool-use", "score"])
    assert unseen.loc["Profile", "score"] == 100.0  # the single persona prompt counts in both views
    table = interval_table({"m": bootstrap_report({"q1": 1.0, "q2": 0.0})}, n_boot=200)
    assert table.loc["m", "Tool-use"].startswith("50.0 [")


def pd_isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_legends_hide_no_bar_and_no_radar_label() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from labkit.evaluate.report import plot_bars, plot_radar

    table = pd.DataFrame({"Planning": [100.0, 10.0, 20.0], "Tool-use": [100.0, 5.0, 0.0],
                          "Reflection": [100.0, 0.0, 0.0], "Concluding": [100.0, 30.0, 40.0],
                          "Profile": [38.0, 10.0, 20.0], "Overall": [94.0, 12.0, 15.0]},
                         index=["sandbox teacher (emulator)", "tiny (random init)", "tuned (smoke)"])
    fig = plot_bars(table)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not _overlaps(legend, ax.get_window_extent(renderer))  # outside the plotting area: no bar behind it
    fig = plot_radar(table)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    labels = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    assert labels and not any(_overlaps(legend, lab) for lab in labels)
    assert not _overlaps(legend, ax.get_window_extent(renderer))


def test_group_table_puts_seen_unseen_and_held_out_formats_side_by_side() -> None:
    from labkit.evaluate.report import group_table

    def report(tag: str, score: float, n: int = 6) -> ScoreReport:
        rows = []
        for i in range(n):
            rows += [ScoreRow(f"q{i}:plan0", "plantooluse", f"t_{tag}", tag, "Planning", score, None),
                     ScoreRow(f"q{i}:plan0", "plantooluse", f"t_{tag}", tag, "Tool-use", score, None),
                     ScoreRow(f"q{i}:refl0", "reflextion", f"t_{tag}", tag, "Reflection", score, None),
                     ScoreRow(f"q{i}:profile", "profile", "profile", "unseen", "Profile", 1.0, None)]
            if tag != "held-out format":
                rows.append(ScoreRow(f"q{i}:conclusion", "conclusion", f"c_{tag}", tag, "Concluding", 1.0, None))
        return ScoreReport(rows, {}, None, {}, {})

    main = {"tuned": report("seen", 0.8), "base": report("seen", 0.1)}
    main = {k: ScoreReport(r.rows + report("unseen", 0.5).rows, {}, None, {}, {}) for k, r in main.items()}
    formats = {"tuned": report("held-out format", 0.0), "base": report("held-out format", 0.0)}
    table = group_table(main, formats, n_boot=200)
    assert list(table.index) == [(m, g) for m in ("tuned", "base") for g in ("seen", "unseen", "held-out format")]
    assert list(table.columns) == ["Planning", "Tool-use", "Reflection", "Overall (P/T/R)", "records"]
    assert table.loc[("tuned", "seen"), "Planning"] == "80.0 [80.0, 80.0]"
    assert table.loc[("tuned", "unseen"), "Overall (P/T/R)"].startswith("50.0 [")  # Profile/Concluding left out
    assert table.loc[("tuned", "held-out format"), "Tool-use"] == "0.0 [0.0, 0.0]"
    assert table.loc[("tuned", "seen"), "records"] == 12  # plan + reflection records of that group
    assert len(group_table(main, n_boot=50)) == 4  # no held-out format reports: that group is left out


def test_recipe_table_and_an_honest_verdict() -> None:
    from labkit.evaluate.report import recipe_table, recipe_verdict

    def report(scores: list[float]) -> ScoreReport:
        rows = [ScoreRow(f"q{i}:plan0", "plantooluse", "react", "seen", dim, s, None)
                for i, s in enumerate(scores) for dim in ("Planning", "Tool-use")]
        dims = {"Planning": 100 * sum(scores) / len(scores), "Tool-use": 100 * sum(scores) / len(scores),
                "Reflection": None, "Concluding": None, "Profile": None}
        return ScoreReport(rows, dims, overall(dims), {}, {})

    info = {"trainable": 10, "steps": 5, "minutes": 1.0, "s_per_step": 12.0}
    close = recipe_table({"full": (report([0.5, 0.6, 0.4, 0.5]), info), "lora": (report([0.45, 0.55, 0.5, 0.4]), info)})
    assert list(close.index) == ["full", "lora"] and close.loc["full", "Overall"] == pytest.approx(50.0)
    assert "没有测出差别" in recipe_verdict(close)
    apart = recipe_table({"full": (report([0.9, 0.95, 0.9, 0.92]), info), "lora": (report([0.1, 0.05, 0.1, 0.0]), info)})
    assert "测出了差别" in recipe_verdict(apart) and recipe_verdict(apart).startswith("full")
