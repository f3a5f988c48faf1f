"""Full-parameter SFT with the HF Trainer (optionally under DeepSpeed ZeRO-3): one code path for CPU and GPUs.

``train(config)`` resumes from the newest checkpoint in ``output_dir``, checkpoints and stops cleanly on
SIGUSR1/SIGTERM (or when ``config.stop_file`` appears, for multi-node Slurm preemption), logs every step to
``train_log.jsonl`` and saves the final model + tokenizer (with labkit's chat template) for evaluation.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainerControl,
                          TrainerState, TrainingArguments)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from labkit.chat import CHAT_TEMPLATE
from labkit.errors import LabkitError
from labkit.jsonl import append_jsonl, read_jsonl, write_jsonl
from labkit.llm.compat import check_vocab
from labkit.train.collate import IGNORE_INDEX, EncodeStats, PadCollator, SFTDataset, load_samples
from labkit.train.config import TrainSettings
from labkit.train.guard import check_output_dir
from labkit.train.loss import supervised_logits_loss
from labkit.llm.local import cpu_has_native_bf16, resolve_device
from labkit.train import lora
from labkit.train.watch import TrainProgress, any_rank, rss_mb
from labkit.train.packing import PackedCollator, packed_rows
from labkit.train.tiny import resolve_model_path

TRAIN_LOG = "train_log.jsonl"
CONFIG_FILE = "labkit_train_config.json"
PID_DIR_ENV = "LABKIT_TRAIN_PID_DIR"  # set by slurm/launch.sh: where each rank writes its pid for signal forwarding


class Preempted(LabkitError):
    """Training stopped on a signal after saving a checkpoint; rerunning resumes from it."""


@dataclass
class TrainResult:
    output_dir: str
    global_step: int
    losses: list[tuple[int, float]]  # (step, loss) for the whole run, including before a resume
    seconds: float  # wall time of this invocation
    s_per_step: float  # mean over steps run in this invocation
    tokens_per_s: float
    resumed_from: str | None
    preempted: bool
    data: EncodeStats = field(default_factory=EncodeStats)
    supervised_tokens_per_s: float = 0.0

    def raise_if_preempted(self) -> None:
        if self.preempted:
            raise Preempted(f"stopped by a signal at step {self.global_step}; checkpoint saved in {self.output_dir}; "
                            "run again (or let Slurm requeue) to resume")


def resolve_precision(precision: str, device: str | None = None) -> str:
    """'auto' -> 'bf16' on a CUDA GPU that supports it or on a CPU with native bf16 (autocast; fp32 master
    weights), else 'fp32'."""
    if precision != "auto":
        return precision
    if (device or resolve_device()) == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if (device or resolve_device()) == "cpu" and cpu_has_native_bf16() else "fp32"


def attention_implementation(packing: bool = False, device: str | None = None, share_prefix: bool = False) -> str:
    """flash_attention_2 on CUDA when flash_attn is installed (packed rows run its variable-length kernel), else
    PyTorch SDPA; packed rows without flash-attn, and shared-prefix rows anywhere (flash-attn's varlen kernel has no
    prefix + branches mask), use labkit's segment attention (labkit.train.packing)."""
    if (device or resolve_device()) == "cuda" and not share_prefix:
        try:
            import flash_attn  # noqa: F401
            return "flash_attention_2"
        except ImportError:
            pass
    if packing:
        from labkit.train.packing import register_segment_attention

        return register_segment_attention()
    return "sdpa"


class LabkitTrainer(Trainer):
    """HF Trainer whose loss may compute logits only at supervised positions; counts tokens for throughput.

    labkit's counterpart of TRL's ``trl.SFTTrainer`` (its completion-only loss and ``loss_type="chunked_nll"``:
    logits only on non-ignored tokens), written out by hand; named apart because it is not TRL's class."""

    def __init__(self, *args: Any, supervised_logits_only: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.supervised_logits_only = supervised_logits_only
        self.tokens_seen = 0
        self.supervised_seen = 0
        self.samples_seen = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
        if model.training:
            mask = inputs.get("attention_mask")
            self.tokens_seen += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
            self.supervised_seen += int((inputs["labels"] != IGNORE_INDEX).sum())
            self.samples_seen += count_samples(inputs)
        if not self.supervised_logits_only or return_outputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = supervised_logits_loss(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # same scaling as Trainer.compute_loss
        return loss


def count_samples(inputs: dict[str, torch.Tensor]) -> int:
    """Training samples in a batch: rows of a padded batch; in a packed row, every place where the position ids
    do not continue by one starts a sample (a new sample at 0, or a shared-prefix branch)."""
    pos = inputs.get("position_ids")
    if pos is None or pos.shape[0] != 1:
        return int(inputs["input_ids"].shape[0])
    p = pos.reshape(-1)
    return 1 + int((p[1:] != p[:-1] + 1).sum())


class StepLogCallback(TrainerCallback):
    """Appends {step, loss, lr, s_per_step, tokens_per_s, ...} to train_log.jsonl on the main process, and prints one
    short progress line every ``print_every`` steps (instead of the Trainer's dict per step)."""

    def __init__(self, trainer: LabkitTrainer, path: Path, print_every: int = 10):
        self.trainer, self.path, self.print_every = trainer, path, print_every
        self.last_time = time.perf_counter()
        self.last_step = 0
        self.last_tokens = 0
        self.last_supervised = 0
        self.last_samples = 0
        self.step_times: list[float] = []  # compute time of each optimizer step (no checkpoint saving)
        self._step_start = self.last_time

    def on_train_begin(self, args, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.last_time, self.last_step = time.perf_counter(), state.global_step

    def on_step_begin(self, args, state, control, **kw: Any) -> None:
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw: Any) -> None:
        self.step_times.append(time.perf_counter() - self._step_start)

    def on_log(self, args, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kw: Any) -> None:
        if not logs or "loss" not in logs or not state.is_world_process_zero:
            return
        now = time.perf_counter()
        steps = max(state.global_step - self.last_step, 1)
        tokens = self.trainer.tokens_seen - self.last_tokens
        supervised = self.trainer.supervised_seen - self.last_supervised
        samples = self.trainer.samples_seen - self.last_samples
        elapsed = max(now - self.last_time, 1e-9)
        rec = {"step": state.global_step, "loss": round(float(logs["loss"]), 6),
               "lr": float(logs.get("learning_rate", 0.0)), "s_per_step": round((now - self.last_time) / steps, 4),
               "tokens_per_s": round(tokens / elapsed, 2), "supervised_tokens_per_s": round(supervised / elapsed, 2),
               "tokens": tokens, "supervised_tokens": supervised, "samples": samples, "rss_mb": rss_mb(),
               "restart": int(os.environ.get("SLURM_RESTART_COUNT", 0))}
        append_jsonl(self.path, [rec])
        if self.print_every and (state.global_step % self.print_every == 0 or state.global_step == state.max_steps):
            print(f"step {state.global_step}/{state.max_steps}  loss {rec['loss']:.4f}  {rec['s_per_step']:.2f} s/step  "
                  f"{rec['supervised_tokens_per_s']:.1f} supervised tokens/s", flush=True)
        self.last_time, self.last_step, self.last_tokens = now, state.global_step, self.trainer.tokens_seen
        self.last_supervised = self.trainer.supervised_seen
        self.last_samples = self.trainer.samples_seen


class CurveCallback(TrainerCallback):
    """Save ``points`` evenly spaced weight snapshots for a learning curve: ``output_dir/curve/step-N/`` (bf16
    weights + config + tokenizer, no optimizer state: ~0.5 GB each for gemma-3-270m) and one line per snapshot in
    ``curve/index.jsonl`` with its step and the training minutes so far (from train_log.jsonl, so a resumed run
    counts the time before the kill too)."""

    def __init__(self, out: Path, points: int, tokenizer: Any, log_cb: "StepLogCallback"):
        self.dir, self.points, self.tokenizer, self.log_cb = out / "curve", points, tokenizer, log_cb

    def steps(self, max_steps: int) -> set[int]:
        return {max(1, round(max_steps * k / (self.points + 1))) for k in range(1, self.points + 1)}

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, model=None, **kw: Any) -> None:
        if state.global_step not in self.steps(state.max_steps) or not state.is_world_process_zero or model is None:
            return
        target = self.dir / f"step-{state.global_step}"
        if (target / "model.safetensors").exists():
            return  # already saved before a resume
        tmp = self.dir / f".step-{state.global_step}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        converted: dict[int, torch.Tensor] = {}  # tied weights (embedding = LM head) stay one tensor: saved once
        state_dict = {k: converted.setdefault(v.data_ptr(), v.detach().to(torch.bfloat16))
                      for k, v in model.state_dict().items()}
        model.save_pretrained(tmp, state_dict=state_dict)
        self.tokenizer.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config.update(use_cache=True, dtype="bfloat16")
        config.pop("_attn_implementation", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        os.replace(tmp, target)
        log = read_jsonl(self.log_cb.path, tolerate_torn_tail=True) if self.log_cb.path.exists() else []
        minutes = sum(float(r.get("s_per_step", 0)) for r in log if int(r.get("step", 0)) <= state.global_step) / 60
        append_jsonl(self.dir / "index.jsonl", [{"step": state.global_step, "path": target.name,
                                                  "train_minutes": round(minutes, 3)}])


class PreemptionCallback(TrainerCallback):
    """SIGUSR1/SIGTERM or a stop file -> save a checkpoint at the end of this step and stop (all ranks agree)."""

    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self, stop_file: str | None):
        self.stop_file = Path(stop_file) if stop_file else None
        self.requested = False
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: Any) -> None:
        self.requested = True

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        pid_dir = os.environ.get(PID_DIR_ENV)
        if pid_dir:
            Path(pid_dir).mkdir(parents=True, exist_ok=True)
            Path(pid_dir, f"rank{os.environ.get('RANK', '0')}.pid").write_text(str(os.getpid()))

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous.clear()

    def on_step_end(self, args, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if any_rank(self.requested or bool(self.stop_file and self.stop_file.exists()), args.device):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True


def _training_args(cfg: TrainSettings, precision: str, device: str | None = None) -> TrainingArguments:
    return TrainingArguments(
        output_dir=cfg.output_dir, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, num_train_epochs=1 if cfg.pack_tokens else cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler, optim="adamw_torch", bf16=precision == "bf16",
        fp16=precision == "fp16", deepspeed=cfg.deepspeed, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps, seed=cfg.seed,
        activation_checkpointing=cfg.gradient_checkpointing,
        train_sampling_strategy="sequential" if cfg.sequential or cfg.pack_tokens else
        ("group_by_length" if cfg.group_by_length else "random"),
        report_to=[], remove_unused_columns=False, dataloader_num_workers=0,
        use_cpu=(device or resolve_device(cfg.device)) == "cpu", disable_tqdm=True,
    )


@contextlib.contextmanager
def _deepspeed_session(enabled: bool) -> Iterator[None]:
    """Around one DeepSpeed run in this process: afterwards restore the environment (DeepSpeed, accelerate and our
    rank setup write variables such as RANK, MASTER_PORT, ACCELERATE_USE_DEEPSPEED) and drop transformers' global
    ZeRO-3 flag, so later model loads in this process are not partitioned and child processes do not inherit them."""
    saved = dict(os.environ)
    try:
        if enabled:
            _ensure_rank_env()
        yield
    finally:
        if enabled:
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()
            os.environ.clear()
            os.environ.update(saved)


def _ensure_rank_env() -> None:
    """Outside torchrun/srun, describe a 1-process world so DeepSpeed does not fall back to MPI discovery."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                      MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),
                      MASTER_PORT=os.environ.get("MASTER_PORT", str(port)))


def _trim_log(path: Path, checkpoint: str | None) -> None:
    """Drop log rows after the checkpoint we resume from (those steps are run again)."""
    if not path.exists():
        return
    last = int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0
    rows = read_jsonl(path, tolerate_torn_tail=True)
    kept = [r for r in rows if int(r.get("step", 0)) <= last]
    if len(kept) != len(rows):
        write_jsonl(path, kept)


def train(config: TrainSettings) -> TrainResult:
    """Run (or resume) one SFT job described by ``config``; see the module docstring."""
    with _deepspeed_session(bool(config.deepspeed)):
        try:
            return _train(config)
        finally:
            # the Trainer, its accelerator and callbacks reference each other: free the model and optimizer state now
            # (GBs), not at some later garbage collection, so a notebook can load the next model after training
            gc.collect()


def _train(config: TrainSettings) -> TrainResult:
    cfg = config
    start = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    args = _training_args(cfg, precision, device)  # before from_pretrained, so ZeRO-3 partitions weights while loading
    if cfg.deepspeed:  # zero.Init (inside from_pretrained) reads the world size from deepspeed.comm: set it up now
        import deepspeed

        _ = args.device  # the Trainer's process group
        deepspeed.init_distributed()

    model_path = resolve_model_path(cfg.model_path)
    check_output_dir(out, model_path, resume=cfg.resume)  # before anything in `out` is rewritten
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    check_vocab(tokenizer, model_path)
    tokenizer.chat_template = CHAT_TEMPLATE
    dataset = SFTDataset(load_samples(cfg.data_path, max_samples=cfg.max_samples), tokenizer, cfg.max_len)
    train_data: Any = dataset
    if cfg.pack_tokens:  # rows filled to a token budget, every epoch packed in its own seeded order
        world = int(os.environ.get("WORLD_SIZE", "1"))
        train_data = packed_rows(dataset.rows, dataset.sources, dataset.prefix_keys, budget=cfg.pack_tokens,
                                 share_prefix=cfg.share_prefix, epochs=cfg.epochs, seed=cfg.seed,
                                 rows_wanted=cfg.max_steps * cfg.grad_accum * world if cfg.max_steps > 0 else None)
    attn = attention_implementation(cfg.packing, device, cfg.share_prefix)
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.bfloat16 if precision == "bf16" and cfg.deepspeed else torch.float32,
        attn_implementation=attn)
    model.config.use_cache = False
    if cfg.freeze_embeddings:
        freeze_embeddings(model)

    collator = (PackedCollator if cfg.packing else PadCollator)(tokenizer.pad_token_id)
    trainer = LabkitTrainer(model=model, args=args, train_dataset=train_data, processing_class=tokenizer,
                         data_collator=collator, supervised_logits_only=cfg.loss_on_supervised_logits_only)
    lora.attach(trainer, cfg)  # lora_r > 0: adapters train, merged into the weights at the end
    log_cb = StepLogCallback(trainer, out / TRAIN_LOG)
    stop_cb = PreemptionCallback(cfg.stop_file)
    if cfg.curve_points:
        trainer.add_callback(CurveCallback(out, cfg.curve_points, tokenizer, log_cb))
    trainer.remove_callback(PrinterCallback)  # one line per logging step, a dict each: our progress line instead
    trainer.add_callback(log_cb)
    trainer.add_callback(stop_cb)
    trainer.add_callback(TrainProgress(cfg.max_minutes))  # steps done / total, ETA; the max_minutes budget

    resume = get_last_checkpoint(str(out)) if cfg.resume and out.is_dir() else None
    if trainer.is_world_process_zero():
        _trim_log(out / TRAIN_LOG, resume)
        (out / CONFIG_FILE).write_text(json.dumps({**cfg.to_dict(), "precision_resolved": precision,
                                                   "attn_implementation": attn,
                                                   "trainable_parameters": trainable_parameters(model),
                                                   "packing": (train_data.epoch_stats[0].to_dict()
                                                               if cfg.pack_tokens else None),
                                                   "data": {"kept": dataset.stats.kept,
                                                            "longest": dataset.stats.longest,
                                                            "dropped_too_long": dataset.stats.dropped_too_long}},
                                                  ensure_ascii=False, indent=2), encoding="utf-8")
    stop_cb.install()
    try:
        trainer.train(resume_from_checkpoint=resume)
    finally:
        stop_cb.uninstall()

    if not stop_cb.stopped:
        prepare_for_inference(model, tokenizer)
        trainer.save_model(str(out))  # gathers ZeRO-3 shards (stage3_gather_16bit_weights_on_model_save)
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(str(out))
    seconds = time.perf_counter() - start
    log = read_jsonl(out / TRAIN_LOG, tolerate_torn_tail=True) if (out / TRAIN_LOG).exists() else []
    ran = log_cb.step_times
    return TrainResult(
        output_dir=str(out), global_step=trainer.state.global_step,
        losses=[(int(r["step"]), float(r["loss"])) for r in log],
        seconds=seconds, s_per_step=sum(ran) / len(ran) if ran else 0.0,
        tokens_per_s=trainer.tokens_seen / sum(ran) if ran else 0.0,
        supervised_tokens_per_s=trainer.supervised_seen / sum(ran) if ran else 0.0,
        resumed_from=resume, preempted=stop_cb.stopped, data=dataset.stats)


def freeze_embeddings(model: torch.nn.Module) -> None:
    """Stop training the input embedding (and the LM head tied to it): gemma-3-270m 268M -> 100M trainable."""
    model.get_input_embeddings().weight.requires_grad_(False)
    out = model.get_output_embeddings()
    if out is not None:
        out.weight.requires_grad_(False)


def trainable_parameters(model: torch.nn.Module) -> dict[str, int]:
    """``{"trainable": n, "total": n}`` (tied weights counted once)."""
    seen: dict[int, torch.nn.Parameter] = {id(p): p for p in model.parameters()}
    return {"trainable": sum(p.numel() for p in seen.values() if p.requires_grad),
            "total": sum(p.numel() for p in seen.values())}


def prepare_for_inference(model: Any, tokenizer: Any) -> None:
    """Before saving: generate with the KV cache, plain SDPA attention (labkit's packing attention is a training
    detail, not something a checkpoint should ask for) and stop at ``<end_of_turn>`` as well as ``<eos>``, so any
    transformers-based server (``transformers serve``) ends the answer where labkit's chat format ends a turn."""
    from labkit.chat import END_OF_TURN

    model.config.use_cache = True
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", "flash_attention_2", "eager"):
        model.config._attn_implementation = "sdpa"
    eot = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    gen = getattr(model, "generation_config", None)
    if gen is not None and isinstance(eot, int) and eot != tokenizer.unk_token_id:
        eos = gen.eos_token_id if gen.eos_token_id is not None else tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        gen.eos_token_id = list(dict.fromkeys([*ids, eot]))
