"""LoRA (low-rank adapters, Hugging Face ``peft``) as a recipe switch: ``TrainSettings.lora_r > 0``.

The course note (§3.3) says agent models usually need full-parameter training, LoRA does worse. Notebook 06's recipe
experiment tests that on the course's own data: the same minutes of training, full parameters against LoRA of rank
``lora_r`` (alpha = 2 r, no dropout) on every attention and MLP projection of the decoder.

:func:`attach` is the trainer's one call: it wraps the Trainer's model in a peft model (only the adapters train;
checkpoints hold the adapters, and resuming loads them back) and, when training ends, merges the adapters into the
weights, so ``output_dir`` holds an ordinary checkpoint that every evaluation loads like a full fine-tune.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from labkit.errors import LabkitError

# Gemma-3 (and Llama-style) decoder projections: attention and MLP, every layer.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(r: int) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=list(TARGET_MODULES),
                      task_type="CAUSAL_LM")


class _MergeAtEnd(TrainerCallback):
    """When training ends, fold the adapters into the weights so the Trainer saves a plain model."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        merged = self.trainer.model.merge_and_unload()  # the base model object, its layers merged in place
        self.trainer.model = self.trainer.model_wrapped = merged


def attach(trainer: Any, cfg: Any) -> None:
    """With ``cfg.lora_r > 0``: train LoRA adapters instead of all parameters (see the module docstring)."""
    if not cfg.lora_r:
        return
    if cfg.curve_points:
        raise LabkitError("TrainSettings: lora_r cannot be combined with curve_points (snapshots save full weights, "
                          "the adapters are merged only at the end); set curve_points: 0")
    if cfg.deepspeed:
        raise LabkitError("TrainSettings: lora_r with DeepSpeed is not supported by labkit; train LoRA without deepspeed")
    from peft import get_peft_model

    peft_model = get_peft_model(trainer.model, lora_config(cfg.lora_r))
    trainer.model = trainer.model_wrapped = peft_model
    trainer.add_callback(_MergeAtEnd(trainer))
