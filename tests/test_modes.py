"""One settings loader (labkit.modes.load_settings): every section typed, unknown keys named with file, line and
field, ``None`` = unset and ``0`` a value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.errors import DataFileError
from labkit.modes import DataSettings, EvalSettings, MetaSettings, load_settings

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def _with_typo(tmp_path: Path, section: str) -> tuple[Path, int]:
    """smoke.yaml with ``typo_key: 1`` added at the end of ``section``; returns the file and that line."""
    lines = SMOKE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"{section}:") if f"{section}:" in lines else next(
        i for i, x in enumerate(lines) if x.startswith(f"{section}:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()
                and not lines[i].startswith("#")), len(lines))
    lines.insert(end, "  typo_key: 1")
    path = tmp_path / f"typo_{section}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, end + 1


@pytest.mark.parametrize("section", ["data", "train", "eval", "meta"])
def test_every_reader_names_file_line_and_field_of_an_unknown_key(section: str, tmp_path: Path) -> None:
    from labkit.data.pipeline import data_settings
    from labkit.meta.pipeline import meta_settings
    from labkit.train import TrainSettings

    path, line = _with_typo(tmp_path, section)
    read = {"data": lambda: data_settings(str(path)), "train": lambda: TrainSettings.for_mode(str(path)),
            "eval": lambda: load_settings(EvalSettings, path, "eval"), "meta": lambda: meta_settings(path)}[section]
    with pytest.raises(DataFileError) as err:
        read()
    assert (err.value.path, err.value.line, err.value.field) == (path, line, f"{section}.typo_key")
    if section == "train":  # the training CLI and from_yaml read through the same loader
        with pytest.raises(DataFileError) as err:
            TrainSettings.from_cli(["--config", str(path)])
        assert (err.value.line, err.value.field) == (line, "train.typo_key")


def test_none_is_unset_and_zero_is_a_value() -> None:
    from labkit.train import TrainSettings

    ev = load_settings(EvalSettings, "smoke", "eval", n_queries=None, max_new_tokens=0)
    assert (ev.n_queries, ev.max_new_tokens) == (3, 0)
    assert TrainSettings.for_mode("smoke", seed=0, max_steps=None).seed == 0  # was 42: 0 used to mean "unset"
    assert TrainSettings.for_mode("smoke", max_steps=None).max_steps == 8
    assert load_settings(MetaSettings, "smoke", "meta", per_cluster=None).per_cluster == 2
    # an explicit override mapping is applied as given (the data CLI's --set step_balance=null turns a lever off)
    assert load_settings(DataSettings, "smoke", "data", {"train_queries": None}).train_queries is None


def test_a_value_of_the_wrong_kind_names_its_line(tmp_path: Path) -> None:
    text = SMOKE.read_text(encoding="utf-8").replace("  n_queries: 3 ", "  n_queries: three ")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, x in enumerate(text.splitlines(), 1) if "n_queries: three" in x)
    with pytest.raises(DataFileError, match="expected int") as err:
        load_settings(EvalSettings, path, "eval")
    assert (err.value.line, err.value.field) == (line, "eval.n_queries")
    assert yaml.safe_load(text)["eval"]["n_queries"] == "three"
