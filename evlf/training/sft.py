"""Stage 1: supervised fine-tuning on EVLF-format targets with TRL's SFTTrainer (loss on the completion only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evlf.core.errors import InputError
from evlf.training.config import SftSettings
from evlf.training.examples import build_examples, to_dataset, with_completions
from evlf.training.stage import common_args, finish, last_checkpoint, load_base, rich_progress_callback


def run_sft(dataset: str | Path, base_dir: str | Path, out_dir: str | Path, settings: SftSettings | None = None,
            completions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Fine-tune `base_dir` on `dataset` (JSONL) into `out_dir`; resumes from the newest checkpoint there.

    `completions` (case id -> reply) replaces the targets written from the truth, e.g. by what a model's own
    tower reports (the demo recipe), so the decoder learns to transcribe it.
    """
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
    if completions is not None:
        examples = with_completions(examples, completions, Path(dataset))
    train = to_dataset(examples, flips=settings.flips, codec_for=base.codec_for)
    args = SFTConfig(
        **common_args(settings, out_dir),
        max_length=settings.max_length,
        completion_only_loss=True,
    )
    trainer_class = SFTTrainer if settings.decision_weight == 1.0 else weighted_trainer(base.processor, settings)
    trainer = trainer_class(
        model=base.model,
        args=args,
        train_dataset=train,
        processing_class=base.processor,
        callbacks=[rich_progress_callback("sft")],
    )
    trainer.train(resume_from_checkpoint=resume)
    return finish(trainer, base, out_dir, "sft", settings, {"cases": len(examples), "examples": len(train)})


def decision_ids(tokenizer: Any, words: list[str]) -> list[int]:
    """Token ids that carry a decision: single digits, and the pieces of each label word as it is written in JSON."""
    ids = {tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_vocab() if tokenizer.convert_tokens_to_string([t]).strip().isdigit()
           and len(tokenizer.convert_tokens_to_string([t]).strip()) == 1}
    for word in words:
        ids |= {i for i in tokenizer(f'"{word}"', add_special_tokens=False).input_ids if tokenizer.decode([i]) not in ('"', "")}
    return sorted(ids)


def weighted_trainer(processor: Any, settings: SftSettings) -> type:
    """SFTTrainer whose loss weighs decision tokens by `settings.decision_weight` (the rest by 1)."""
    import torch
    from trl import SFTTrainer

    tokenizer = getattr(processor, "tokenizer", processor)
    chosen = torch.tensor(decision_ids(tokenizer, settings.decision_words))
    weight = settings.decision_weight

    class DecisionWeightedSFTTrainer(SFTTrainer):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"]
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False)
            logits, target = outputs.logits[:, :-1].float(), labels[:, 1:]
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
                                                   reduction="none").view_as(target)
            w = torch.where(torch.isin(target, chosen.to(target.device)), weight, 1.0) * (target != -100)
            loss = (ce * w).sum() / w.sum().clamp(min=1)
            return (loss, outputs) if return_outputs else loss

    return DecisionWeightedSFTTrainer
