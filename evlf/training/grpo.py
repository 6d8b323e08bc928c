"""Stage 2: visual reinforcement fine-tuning with TRL's GRPOTrainer and rule-based rewards (format, accuracy, grounding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError, InputError
from evlf.training.config import GrpoSettings
from evlf.training.examples import build_examples, to_dataset
from evlf.training.rewards import REWARDS
from evlf.training.stage import common_args, finish, last_checkpoint, load_base, rich_progress_callback


def run_grpo(dataset: str | Path, base_dir: str | Path, out_dir: str | Path, settings: GrpoSettings | None = None) -> dict[str, Any]:
    """Reinforce `base_dir` (usually the SFT output) on `dataset` into `out_dir`; resumes from the newest checkpoint."""
    from trl import GRPOConfig, GRPOTrainer

    settings = settings or GrpoSettings()
    unknown = set(settings.reward_weights) - set(REWARDS)
    if unknown:
        raise ConfigError(f"unknown rewards {sorted(unknown)} (known: {', '.join(REWARDS)})")
    names = [n for n in REWARDS if settings.reward_weights.get(n, 0) > 0]
    if not Path(dataset).is_file():
        raise InputError(Path(dataset), "no such dataset file")
    out_dir = Path(out_dir)
    resume = last_checkpoint(out_dir)
    base = load_base(base_dir, settings, resume)
    examples = build_examples(dataset, base.codec_for, prompts=settings.prompts)
    if settings.max_cases:
        examples = examples[: settings.max_cases]
    train = to_dataset(examples, flips=settings.flips, codec_for=base.codec_for).remove_columns(["completion"])
    args = GRPOConfig(
        **common_args(settings, out_dir),
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        beta=settings.beta,
        reward_weights=[settings.reward_weights[n] for n in names],
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=base.model,
        reward_funcs=[REWARDS[n] for n in names],
        args=args,
        train_dataset=train,
        processing_class=base.processor,
        callbacks=[rich_progress_callback("grpo")],
    )
    trainer.train(resume_from_checkpoint=resume)
    return finish(trainer, base, out_dir, "grpo", settings, {"cases": len(examples), "rewards": names})
