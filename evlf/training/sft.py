"""Stage 1: supervised fine-tuning on EVLF-format targets with TRL's SFTTrainer (loss on the completion only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evlf.core.errors import InputError
from evlf.training.config import SftSettings
from evlf.training.examples import build_examples, to_dataset
from evlf.training.stage import common_args, finish, last_checkpoint, load_base, rich_progress_callback


def run_sft(dataset: str | Path, base_dir: str | Path, out_dir: str | Path, settings: SftSettings | None = None) -> dict[str, Any]:
    """Fine-tune `base_dir` on `dataset` (JSONL) into `out_dir`; resumes from the newest checkpoint there."""
    from trl import SFTConfig, SFTTrainer

    settings = settings or SftSettings()
    if not Path(dataset).is_file():
        raise InputError(Path(dataset), "no such dataset file")
    out_dir = Path(out_dir)
    resume = last_checkpoint(out_dir)
    base = load_base(base_dir, settings, resume)
    examples = build_examples(dataset, base.codec_for, prompts=settings.prompts)
    if settings.max_cases:
        examples = examples[: settings.max_cases]
    train = to_dataset(examples, flips=settings.flips, codec_for=base.codec_for)
    args = SFTConfig(
        **common_args(settings, out_dir),
        max_length=settings.max_length,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=base.model,
        args=args,
        train_dataset=train,
        processing_class=base.processor,
        callbacks=[rich_progress_callback("sft")],
    )
    trainer.train(resume_from_checkpoint=resume)
    return finish(trainer, base, out_dir, "sft", settings, {"cases": len(examples), "examples": len(train)})
