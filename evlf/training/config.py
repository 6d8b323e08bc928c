"""Hyperparameters of the two training stages, read from a JSON config file (all fields optional)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evlf.core.errors import InputError


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"


class StageSettings(BaseModel):
    """Shared by SFT and GRPO. `finetune="auto"` means LoRA above `lora_above_params`, full fine-tuning below."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(8, gt=0)
    grad_accum: int = Field(1, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    logging_steps: int = Field(10, gt=0)
    save_steps: int = Field(200, gt=0)
    save_total_limit: int = Field(2, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    finetune: Literal["auto", "full", "lora"] = "auto"
    lora_above_params: int = Field(200_000_000, ge=0)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    bf16: bool | None = None  # None: bf16 where the hardware has it
    flips: bool = False  # add mirrored copies of every case (boxes mirrored too)
    max_cases: int | None = Field(None, gt=0)
    threads: int | None = Field(None, gt=0)  # torch CPU threads
    prompts: Literal["evlf", "pipeline"] = "evlf"  # pipeline: the graph's specialty prompts, as evlf diagnose sends them
    #: parameter names (fnmatch patterns) kept fixed, e.g. a hand-set circuit or a tower trained beforehand
    frozen: list[str] = Field(default_factory=list)


class SftSettings(StageSettings):
    max_length: int | None = 1024
    #: loss weight of decision tokens (digits, lesion labels): >1 makes a template-fluent decoder attend to the image
    decision_weight: float = Field(1.0, gt=0)
    decision_words: list[str] = Field(default_factory=lambda: ["nodule", "mass", "cyst", "normal"])


class GrpoSettings(StageSettings):
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(8, gt=0)
    num_generations: int = Field(4, gt=1)
    max_completion_length: int = Field(160, gt=0)
    temperature: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0)
    reward_weights: dict[str, float] = Field(default_factory=lambda: {"format": 1.0, "accuracy": 1.0, "grounding": 2.0})


def load_settings(kind: type[StageSettings], path: str | Path | None) -> StageSettings:
    """Settings from a JSON file (or the defaults); a bad file is one InputError naming it."""
    if path is None:
        return kind()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read config ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        from evlf.core.dataset import describe_validation_error

        raise InputError(path, describe_validation_error(exc)) from None
