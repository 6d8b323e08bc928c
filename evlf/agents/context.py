"""The run configuration every graph reads (LangGraph `context_schema`).

Plain data only: it is hashed to reuse loaded models across runs, written into
provenance, and loadable from a JSON file (`evlf eval --context-file`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evlf.agents import defaults
from evlf.core.errors import ConfigError, InputError


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = defaults.BACKEND  # `tiny` (untrained) only when asked for
    model: str | None = None  # local model directory (transformers) or served model name (openai)
    endpoint: str | None = None  # OpenAI-compatible base URL
    backend_options: dict[str, Any] = Field(default_factory=dict)
    specialties: list[str] | None = None  # allow-list; None = every registered specialty
    n_exemplars: int = Field(2, ge=0, le=16)
    case_store: str | None = None  # path of a case store; None = default store if it exists
    cross_modality_exemplars: bool = False  # allow exemplars of another modality when none of the study's own exists
    embedder: str | None = None  # None = the store's own embedder
    refiner: str = defaults.REFINER
    refiner_options: dict[str, Any] = Field(default_factory=dict)
    verify_iou: float | None = Field(None, ge=0.0, le=1.0)  # overrides the specialty's threshold
    adjust_iou: float | None = Field(None, ge=0.0, le=1.0)
    verify_rounds: int = Field(1, ge=0, le=5)  # extra reasoning rounds after a failed verification
    panel_size: int = Field(3, ge=1, le=6)
    seed: int = 0
    temperature: float = Field(0.0, ge=0.0)
    max_new_tokens: int = Field(384, gt=0)
    constrained: bool = defaults.CONSTRAINED  # generate under the answer schema where the backend can
    closed_labels: bool = False  # with constrained: labels only from the specialty's label set
    review: bool = False  # pause before the final report for approval or edits (needs a checkpointer)

    @classmethod
    def from_file(cls, path: str | Path) -> Context:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise InputError(p, "no such context file") from None
        except json.JSONDecodeError as exc:
            raise InputError(p, f"invalid JSON ({exc})") from None
        try:
            return cls.model_validate(data)
        except Exception as exc:
            raise InputError(p, f"invalid context: {' '.join(str(exc).split())}") from None

    def key(self) -> str:
        return self.model_dump_json()

    @classmethod
    def build(cls, base: Context | dict[str, Any] | None = None, **overrides: Any) -> Context:
        """`base` with `overrides` applied; a bad setting is a ConfigError that names it."""
        settings = base.model_dump() if isinstance(base, Context) else dict(base or {})
        settings.update(overrides)
        try:
            return cls.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'context'}: {e['msg']}" for e in exc.errors())
            known = ", ".join(cls.model_fields)
            raise ConfigError(f"invalid pipeline settings ({problems}); settings are: {known}") from None
