"""TrainSettings: every training setting in one dataclass, loadable from YAML plus ``--key value`` overrides.

Read through the one settings loader, :func:`labkit.modes.settings_values`: unknown keys are rejected with the file,
line and field (a typo must not silently fall back to a default), nanoGPT style.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from labkit.errors import DataFileError, LabkitError
from labkit.modes import coerce, settings_values
from labkit.paths import cache_dir, runs_dir

PRECISIONS = ("auto", "bf16", "fp16", "fp32")

# Relative paths inside a YAML file are relative to the repository root (configs/*.yaml are written that way), so a
# job reads the same files whatever its working folder (papermill runs notebooks in notebooks/).
PATH_KEYS = ("deepspeed", "data_path", "output_dir", "model_path", "stop_file")


def _default_model() -> str:
    return str(cache_dir() / "gemma-3-270m")


def _default_data() -> str:
    return str(runs_dir() / "data" / "course" / "train.jsonl")


def _default_output() -> str:
    return str(runs_dir() / "train" / "course")


@dataclass
class TrainSettings:
    """Full-parameter SFT settings. Defaults follow the note (max_len 4096, batch 1, AdamW, bf16 where possible).

    labkit's counterpart of TRL's ``trl.SFTConfig`` (a ``TrainingArguments`` subclass with the SFT fields, e.g.
    ``assistant_only_loss``, ``packing``): the same ideas written out by hand to teach them, under another name
    because it is a different class (plain dataclass, our own field names; ``labkit.train.trainer`` turns it into
    ``TrainingArguments``)."""

    model_path: str = field(default_factory=_default_model)
    data_path: str = field(default_factory=_default_data)
    output_dir: str = field(default_factory=_default_output)
    max_len: int = 4096
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    batch_size: int = 1  # per device
    grad_accum: int = 1
    precision: str = "auto"  # auto: bf16 on a CUDA GPU with bf16 and on a CPU with native bf16 (AVX512-BF16/AMX), else fp32
    deepspeed: str | None = None  # path to a DeepSpeed JSON (slurm/ds_zero3.json) or None
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 1
    gradient_checkpointing: bool = False
    group_by_length: bool = True  # batches of similar lengths (less padding); False: random order
    sequential: bool = False  # samples in file order (benchmarks that must feed every variant the same samples)
    seed: int = 42
    loss_on_supervised_logits_only: bool = True
    # Freeze the (tied) input embedding / LM head: 268M -> 100M trainable parameters for gemma-3-270m, so AdamW and
    # the 262k-row weight gradient shrink. A course-on-a-CPU setting: the note's recipe (GPUs, Slurm) trains all.
    freeze_embeddings: bool = False
    # Pack the samples of a batch into one row (position ids restart per sample; attention never crosses samples:
    # labkit's per-segment SDPA on CPU, flash-attn varlen on GPU) instead of padding them.
    packing: bool = False
    # With packing: fill every row to this many tokens (best fit over a seeded shuffled stream of the samples, agent
    # and general mixed as the data mixes them), one row per step and device; 0 = `batch_size` samples per row in
    # the Trainer's sampler order. Must be >= max_len. labkit.train.packing.pack_units
    pack_tokens: int = 0
    # With pack_tokens: a trajectory's steps under one template share one copy of their common prompt prefix in a
    # row (prefix + suffixes; the loss equals that of the separate samples). labkit.train.packing.shared_prefix_units
    share_prefix: bool = False
    curve_points: int = 0  # > 0: that many evenly spaced bf16 weight snapshots in output_dir/curve/ (learning curve)
    max_samples: int = -1  # > 0: use only the first N samples (smoke runs)
    resume: bool = True  # continue from the newest checkpoint-* in output_dir
    stop_file: str | None = None  # when this file appears, checkpoint and stop (Slurm preemption across nodes)
    device: str = "auto"  # auto: CUDA, else Apple MPS, else CPU (labkit.llm.local.resolve_device); or cpu/cuda/mps
    lora_r: int = 0  # > 0: train LoRA adapters of this rank instead of all parameters (labkit.train.lora)
    max_minutes: float = 0.0  # > 0: stop after this many minutes of training and save (labkit.train.watch)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise LabkitError(f"TrainSettings.precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("max_len", "batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise LabkitError(f"TrainSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise LabkitError("TrainSettings needs epochs > 0 or max_steps > 0")
        if self.pack_tokens < 0:
            raise LabkitError(f"TrainSettings.pack_tokens must be >= 0, got {self.pack_tokens}")
        if self.pack_tokens:
            if not self.packing:
                raise LabkitError("TrainSettings.pack_tokens needs packing: true")
            if self.pack_tokens < self.max_len:
                raise LabkitError(f"TrainSettings.pack_tokens ({self.pack_tokens}) must be >= max_len ({self.max_len}): "
                                  "every sample must fit in a row")
            if self.batch_size != 1:
                raise LabkitError("TrainSettings.batch_size counts packed rows per step when pack_tokens is set: use "
                                  f"batch_size: 1 (more rows per step: grad_accum), got {self.batch_size}")
        if self.share_prefix and not self.pack_tokens:
            raise LabkitError("TrainSettings.share_prefix needs pack_tokens > 0")
        if self.device not in ("auto", "cpu", "cuda", "mps") or self.lora_r < 0 or self.max_minutes < 0:
            raise LabkitError(f"TrainSettings: device must be auto/cpu/cuda/mps (got {self.device!r}), lora_r and "
                              f"max_minutes >= 0 (got {self.lora_r}, {self.max_minutes})")
        if self.deepspeed is not None and not Path(self.deepspeed).is_file():
            raise LabkitError(f"TrainSettings.deepspeed: no such DeepSpeed config file {self.deepspeed!r}")

    @classmethod
    def for_mode(cls, mode: str, **overrides: Any) -> "TrainSettings":
        """The ``train`` section of ``configs/<mode>.yaml`` (or of a YAML path) plus overrides, read by
        :func:`labkit.modes.settings_values` (the one settings loader).

        An override of ``None`` keeps the file's value (notebook parameters use it for "unset"); ``0`` and ``""``
        are values. Data and output paths default to ``runs/data/<mode>/train.jsonl`` and ``runs/train/<mode>``.
        """
        name = Path(mode).stem
        values = settings_values(cls, mode, "train", prepare=_resolve_paths, **overrides)
        return cls(**{"data_path": str(runs_dir() / "data" / name / "train.jsonl"),
                      "output_dir": str(runs_dir() / "train" / name), **values})

    # --- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, object], *, source: str | Path = "<dict>") -> "TrainSettings":
        """Settings from raw values (e.g. the command line's): unknown keys and values of the wrong kind raise
        :class:`~labkit.errors.DataFileError` naming ``source`` and the key."""
        known = set(cls.field_names())
        for key in values:
            if key not in known:
                raise DataFileError(source, f"unknown {cls.__name__} key; known: {', '.join(sorted(known))}",
                                    field=key)
        hints = get_type_hints(cls)
        return cls(**{k: coerce(v, hints[k], path=source, field=k) for k, v in values.items()})

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "TrainSettings":
        """A mode file's ``train`` section (``configs/<name>.yaml``, or a name such as ``course``), or a flat YAML
        mapping of settings; ``overrides`` win (applied as given). Read by :func:`labkit.modes.settings_values`, so
        a bad key or value names the file, line and field."""
        return cls(**settings_values(cls, path, "train", overrides, flat=True, prepare=_resolve_paths))

    @classmethod
    def from_cli(cls, argv: list[str]) -> "TrainSettings":
        """``[--config x.yaml] [--key value | --key=value] ...``; values are parsed as YAML scalars."""
        config_path, overrides = None, {}
        i = 0
        while i < len(argv):
            arg = argv[i]
            if not arg.startswith("--"):
                raise LabkitError(f"unexpected argument {arg!r}; use --key value")
            key, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise LabkitError(f"--{key} needs a value")
                value, i = argv[i + 1], i + 1
            i += 1
            if key == "config":
                config_path = value
            else:
                overrides[key.replace("-", "_")] = yaml.safe_load(value)
        if config_path:
            return cls.from_yaml(config_path, overrides)
        return cls.from_dict(overrides, source="<command line>")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


def _resolve_paths(values: dict[str, Any]) -> dict[str, Any]:
    """A YAML file's relative paths (``a/b``, not bare model names such as ``tiny``) -> under the repository root."""
    from labkit.paths import REPO_ROOT

    out = dict(values)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and "/" in value and not Path(value).expanduser().is_absolute():
            out[key] = str(REPO_ROOT / value)
    return out
