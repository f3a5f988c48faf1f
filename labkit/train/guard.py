"""Refuse an output folder that belongs to another model before anything in it is rewritten.

A training run records which base model it started from in ``output_dir/labkit_base_model.json`` (path, a
fingerprint of the weights, the architecture). Resuming compares that identity, not only the architecture: another
model of the same shape (a fine-tuned copy, a different checkpoint of the same family) has the same config but
different weights, and resuming its optimizer state and checkpoint onto them would silently mix two models.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, TypedDict

from transformers.trainer_utils import get_last_checkpoint

from labkit.errors import LabkitError
from labkit.jsonl import read_json
from labkit.llm.compat import architecture

BASE_RECORD = "labkit_base_model.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
FULL_HASH_LIMIT = 4 << 30  # weights up to 4 GiB (gemma-3-270m: 1 GiB) are hashed whole
SAMPLES, CHUNK = 1024, 1 << 16  # larger ones: 1024 evenly spaced 64 KB reads per file (64 MB)


class BaseIdentity(TypedDict):
    """``labkit_base_model.json``: the base model an output folder trains."""

    model_path: str
    fingerprint: str             # :func:`fingerprint`
    architecture: dict[str, Any]  # labkit.llm.compat.architecture: the config fields that decide weight shapes


def fingerprint(model_dir: str | Path) -> str:
    """A short identity of a checkpoint's weights: sha256 over each weight file's name, size and bytes.

    Weights of up to :data:`FULL_HASH_LIMIT` bytes in all are hashed whole (any changed byte changes it; about a
    second for gemma-3-270m). Larger checkpoints (the cluster configs' 7B-72B models) hash :data:`SAMPLES` evenly
    spaced chunks of :data:`CHUNK` bytes per file instead, so the check stays cheap; a fine-tune changes every
    trained tensor throughout, which the samples, about every 1/1000 of a file, see."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256(b"labkit-fingerprint-v1\0")
    weights = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not weights:
        raise LabkitError(f"{model_dir} holds no weight files ({', '.join(WEIGHT_SUFFIXES)}): not a checkpoint")
    whole = sum(p.stat().st_size for p in weights) <= FULL_HASH_LIMIT
    for path in weights:
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as fh:
            if whole or size <= SAMPLES * CHUNK:
                for block in iter(lambda: fh.read(1 << 24), b""):
                    digest.update(block)
                continue
            step = (size - CHUNK) / (SAMPLES - 1)
            for i in range(SAMPLES):
                fh.seek(round(i * step))
                digest.update(fh.read(CHUNK))
    return digest.hexdigest()[:32]


def base_identity(model_path: str | Path) -> BaseIdentity:
    """What ``output_dir/labkit_base_model.json`` records: the base model's path, fingerprint and architecture."""
    return {"model_path": str(model_path), "fingerprint": fingerprint(model_path),
            "architecture": architecture(model_path)}


def recorded_base(out: str | Path) -> BaseIdentity | None:
    """The base model recorded in ``out`` (None: no record, e.g. a run from before records existed)."""
    path = Path(out) / BASE_RECORD
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except LabkitError as exc:
        raise LabkitError(f"{path} is unreadable ({exc}); it says which model this folder trains. Use a new "
                          "output_dir, or set resume=False to start over in this one") from None
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), str):
        raise LabkitError(f"{path} does not name a base model fingerprint; use a new output_dir, or resume=False")
    return record


def check_output_dir(out: str | Path, model_path: str | Path, *, resume: bool) -> None:
    """Check ``out`` before anything in it is rewritten, then record ``model_path`` as its base model.

    With ``resume`` and a checkpoint (or a saved final model) in ``out``: the recorded base model must be
    ``model_path`` by fingerprint (:func:`fingerprint`; another model of the same shape is refused), and the
    checkpoint must have its architecture (otherwise resuming would fail late with a raw size mismatch after
    rewriting the run's files). A folder from before records existed is checked by architecture only. Without
    ``resume`` the run starts over and the folder is recorded as this model's."""
    out = Path(out)
    mine = base_identity(model_path)
    if resume and out.is_dir():
        last = get_last_checkpoint(str(out))
        saved = Path(last) if last else out
        if (saved / "config.json").is_file():
            _check_same_model(out, saved, model_path, mine)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{BASE_RECORD}.{os.getpid()}.tmp"  # every rank may write it: same content, atomic replace
    tmp.write_text(json.dumps(mine, indent=2), encoding="utf-8")
    os.replace(tmp, out / BASE_RECORD)


def _check_same_model(out: Path, saved: Path, model_path: str | Path, mine: BaseIdentity) -> None:
    record = recorded_base(out)
    if record is not None and record["fingerprint"] != mine["fingerprint"]:
        raise LabkitError(f"{saved} holds a checkpoint trained from another model ({record.get('model_path')}, "
                          f"fingerprint {record['fingerprint']}) than {model_path} (fingerprint "
                          f"{mine['fingerprint']}), although both have the same shape; use a new output_dir, or "
                          "set resume=False to start over in this one")
    have, want = architecture(saved), mine["architecture"]
    diff = {k: (have.get(k), want.get(k)) for k in set(have) | set(want) if have.get(k) != want.get(k)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r}" for k, (a, b) in sorted(diff.items()))
        raise LabkitError(f"{saved} holds a checkpoint of another model than {model_path} ({shown}); "
                          "use a new output_dir, or set resume=False to start over in this one")
