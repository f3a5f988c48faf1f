"""CJK font selection with a fallback, and the note's two diagrams."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

from labkit import plotting  # noqa: E402
from labkit.figures import agent_framework, rd_flow  # noqa: E402


def test_missing_cjk_font_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plotting, "_state", {})
    monkeypatch.setattr(plotting, "cjk_font", lambda candidates=plotting.CJK_FONTS: None)
    with pytest.warns(UserWarning, match="fonts-noto-cjk"):
        assert plotting.use_cjk_font() is None
    assert matplotlib.rcParams["font.sans-serif"][0] == plotting.FALLBACK
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plotting.use_cjk_font()  # no second warning


def test_installed_cjk_font_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plotting, "_state", {})
    monkeypatch.setattr(plotting, "cjk_font", lambda candidates=plotting.CJK_FONTS: "WenQuanYi Micro Hei")
    assert plotting.use_cjk_font() == "WenQuanYi Micro Hei"
    assert matplotlib.rcParams["font.sans-serif"][:2] == ["WenQuanYi Micro Hei", plotting.FALLBACK]
    assert matplotlib.rcParams["axes.unicode_minus"] is False


def test_cjk_font_lookup_uses_installed_fonts() -> None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = plotting.cjk_font()
    assert found is None or found in installed
    assert plotting.cjk_font(("DejaVu Sans",)) == "DejaVu Sans"


@pytest.mark.parametrize("draw", [agent_framework, rd_flow])
def test_diagrams_draw(draw) -> None:
    fig = draw()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert fig.axes[0].get_title().startswith("§1.") and len(texts) >= 6
