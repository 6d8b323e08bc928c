"""What SFT and GRPO share: loading the base, LoRA or full fine-tuning, precision, resume, progress, and the outputs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError, InputError
from evlf.core.geometry import BoxCodec, BoxConvention
from evlf.plugins.backends.processors import qwen_resize
from evlf.training.config import StageSettings
from evlf.training.examples import CodecFactory


@dataclass
class Base:
    model: Any
    processor: Any
    convention: BoxConvention
    codec_for: CodecFactory
    n_params: int


def _family(model_dir: Path) -> Any:
    from evlf.plugins.backends.families import family_of
    from evlf.models import register_architectures

    config = model_dir / "config.json"
    if not config.is_file():
        raise InputError(model_dir, "not a model directory (no config.json)")
    data = json.loads(config.read_text())
    register_architectures(data)  # a custom vision tower (the demo model's) must be known before loading
    return family_of(data["model_type"])


def codec_factory(convention: BoxConvention, processor: Any) -> CodecFactory:
    """Per-image codecs; Qwen2.5-VL's resized-pixel frame comes from the processor's own resize rule."""
    if convention is not BoxConvention.RESIZED_PIXELS:
        return lambda size: BoxCodec(convention, size)
    ip = processor.image_processor
    factor = int(getattr(ip, "patch_size", 14)) * int(getattr(ip, "merge_size", 2))
    size_cfg = getattr(ip, "size", None) or {}
    get = size_cfg.get if hasattr(size_cfg, "get") else (lambda k, d=None: getattr(size_cfg, k, d))
    lo = int(get("shortest_edge", None) or getattr(ip, "min_pixels", None) or 56 * 56)
    hi = int(get("longest_edge", None) or getattr(ip, "max_pixels", None) or 14 * 14 * 4 * 1280)

    def make(size: tuple[int, int]) -> BoxCodec:
        h, w = qwen_resize(size[1], size[0], factor=factor, min_pixels=lo, max_pixels=hi)
        return BoxCodec(convention, size, resized=(w, h))

    return make


def load_base(model_dir: str | Path, settings: StageSettings, resume: str | None = None) -> Base:
    """The base model and processor from a local directory, LoRA-wrapped when the settings (or its size) ask.

    With `resume` (a Trainer checkpoint) the weights come from the checkpoint:
    the Trainer's own reload does not map this transformers' checkpoint keys
    for every architecture and would silently keep the base weights.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from evlf.plugins.backends.processors import load_processor

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(model_dir, "no such model directory")
    family = _family(model_dir)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    dtype = torch.bfloat16 if use_bf16(settings) else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
    processor = load_processor(model_dir, family)
    n_params = sum(p.numel() for p in model.parameters())
    lora = settings.finetune == "lora" or (settings.finetune == "auto" and n_params > settings.lora_above_params)
    if lora and resume:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resume, is_trainable=True)
    elif resume:
        model = AutoModelForImageTextToText.from_pretrained(resume, dtype=dtype, local_files_only=True)
    elif lora:
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=settings.lora.r,
            lora_alpha=settings.lora.alpha,
            lora_dropout=settings.lora.dropout,
            target_modules=settings.lora.target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, cfg)
    freeze(model, settings.frozen)
    return Base(model, processor, family.box_convention, codec_factory(family.box_convention, processor), n_params)


def freeze(model: Any, patterns: list[str]) -> None:
    """Keep the parameters whose names match any of `patterns` (fnmatch) fixed; a pattern matching none is an error."""
    from fnmatch import fnmatch

    named = dict(model.named_parameters())
    for pattern in patterns:
        hits = [name for name in named if fnmatch(name, pattern)]
        if not hits:
            raise ConfigError(f"frozen: no parameter matches {pattern!r} (names look like {next(iter(named), '?')!r})")
        for name in hits:
            named[name].requires_grad_(False)


def use_bf16(settings: StageSettings) -> bool:
    """bf16 only where the hardware has it (a CUDA device with bf16 support)."""
    import torch

    available = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if settings.bf16 and not available:
        raise ConfigError("bf16 was asked for but this machine has no bf16-capable GPU")
    return available if settings.bf16 is None else settings.bf16


def common_args(settings: StageSettings, out_dir: Path) -> dict[str, Any]:
    """TrainingArguments shared by SFTConfig and GRPOConfig."""
    return {
        "output_dir": str(out_dir / "checkpoints"),
        "seed": settings.seed,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": settings.lr_scheduler,
        "warmup_steps": settings.warmup_ratio,  # a float below 1 is a ratio of the total
        "weight_decay": settings.weight_decay,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.grad_accum,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "logging_steps": settings.logging_steps,
        "save_steps": settings.save_steps,
        "save_total_limit": settings.save_total_limit,
        "max_grad_norm": settings.max_grad_norm,
        "bf16": use_bf16(settings),
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "use_cpu": not _cuda(),
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest checkpoint under out_dir/checkpoints, to resume from."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out_dir / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def rich_progress_callback(title: str) -> Any:
    """A TrainerCallback drawing a rich progress bar with the latest logged metrics."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task: Any = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.progress = Progress(
                TextColumn(f"[bold]{title}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                transient=False,
                console=Console(stderr=True),
                disable=os.environ.get("EVLF_NO_PROGRESS") == "1",
            )
            self.progress.start()
            self.task = self.progress.add_task(title, total=state.max_steps, completed=state.global_step, metrics="")

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if self.progress is None or not logs:
                return
            keep = {k: v for k, v in logs.items() if isinstance(v, float) and ("loss" in k or k.startswith("rewards/") or k == "reward")}
            text = " ".join(f"{k.removeprefix('rewards/').removesuffix('/mean')}={v:.3f}" for k, v in list(keep.items())[:5])
            self.progress.update(self.task, metrics=text)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.progress is not None:
                self.progress.stop()

    return RichProgress()


def finish(trainer: Any, base: Base, out_dir: Path, stage: str, settings: StageSettings, extra: dict[str, Any]) -> dict[str, Any]:
    """Save the trained model (or adapter) with its processor, the log history, a summary and the curves PNG."""
    from evlf.training.curves import plot_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out_dir))
    base.processor.save_pretrained(str(out_dir))
    history = trainer.state.log_history
    (out_dir / "log_history.json").write_text(json.dumps(history, indent=1))
    plot_curves(history, out_dir / "curves.png", title=f"evlf {stage}")
    losses = [h["loss"] for h in history if "loss" in h]
    summary = {
        "stage": stage,
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "box_convention": base.convention.value,
        "params": base.n_params,
        "lora": hasattr(base.model, "peft_config"),
        "settings": settings.model_dump(),
        **extra,
    }
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
