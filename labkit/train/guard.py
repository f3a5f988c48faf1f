"""Refuse an output folder that belongs to another model before anything in it is rewritten."""

from __future__ import annotations

from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from labkit.errors import LabkitError
from labkit.llm.compat import architecture


def check_output_dir(out: str | Path, model_path: str | Path, *, resume: bool) -> None:
    """With ``resume``, the newest checkpoint (or the saved final model) in ``out`` must have ``model_path``'s
    architecture; otherwise resuming would fail late with a raw size mismatch after rewriting the run's files."""
    out = Path(out)
    if not resume or not out.is_dir():
        return
    last = get_last_checkpoint(str(out))
    saved = Path(last) if last else out
    if not (saved / "config.json").is_file():
        return
    have, want = architecture(saved), architecture(model_path)
    diff = {k: (have.get(k), want.get(k)) for k in set(have) | set(want) if have.get(k) != want.get(k)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r}" for k, (a, b) in sorted(diff.items()))
        raise LabkitError(f"{saved} holds a checkpoint of another model than {model_path} ({shown}); "
                          "use a new output_dir, or set resume=False to start over in this one")
