"""Matplotlib with Chinese labels: find an installed CJK font, else fall back (with one clear warning).

Debian: ``apt-get install fonts-noto-cjk`` (or the smaller ``fonts-wqy-microhei``); macOS and Windows ship PingFang /
Microsoft YaHei. Without any of them matplotlib draws Chinese characters as empty boxes, which is what the warning says.
"""

from __future__ import annotations

import warnings

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "PingFang SC", "Microsoft YaHei", "SimHei", "Heiti SC", "AR PL UMing CN")
FALLBACK = "DejaVu Sans"
NO_CJK_WARNING = ("no CJK font found: Chinese labels will show as boxes. Install one, e.g. "
                  "`apt-get install fonts-noto-cjk` (Debian/Ubuntu), then restart the kernel.")
_state: dict[str, str | None] = {}


def cjk_font(candidates: tuple[str, ...] = CJK_FONTS) -> str | None:
    """The first installed CJK font family among ``candidates`` (None if none is installed)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in candidates if name in installed), None)


def use_cjk_font(*, warn: bool = True) -> str | None:
    """Make matplotlib draw Chinese text: set the first installed CJK font (keeping DejaVu Sans for the rest) and
    return its name; with none installed, warn once and return None."""
    import logging

    import matplotlib as mpl

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "no bold weight" notes for CJK fonts
    if "font" not in _state:
        _state["font"] = cjk_font()
        if _state["font"] is None and warn:
            warnings.warn(NO_CJK_WARNING, stacklevel=2)
    name = _state["font"]
    families = [name, FALLBACK] if name else [FALLBACK]
    mpl.rcParams["font.sans-serif"] = families + [f for f in mpl.rcParams["font.sans-serif"] if f not in families]
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212
    return name
