"""Graph state: the input (a Study), the typed value a specialist produces, and the output (a Report).

Only plain, serialisable data lives here (pydantic models the checkpointer is
allowed to revive, see CHECKPOINT_TYPES), so a SQLite checkpoint resumes a run
in a new process; images and models reach nodes through the runtime context
(evlf.agents.runtime), never through state.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from evlf.core import answer as core_answer
from evlf.core import types as core_types
from evlf.core.answer import EvlfAnswer
from evlf.core.backends.base import ModelIdentity
from evlf.core.geometry import BoxConvention
from evlf.core.types import CheckIssue, Diagnosis, Exemplar, Finding, ImageSummary, Report, Study


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(left or {})
    for key, value in (right or {}).items():
        if isinstance(value, (int, float)) and isinstance(out.get(key), (int, float)):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


class SpecialistDraft(BaseModel):
    """One specialist's answer for the study, as it moves through retrieve -> reason -> ground -> refine -> verify.

    Every node of the specialist branch reads this value and returns an updated copy.
    """

    model_config = ConfigDict(extra="forbid")

    specialty: str
    round: int = 0  # reasoning rounds done so far
    text: str = ""  # the model's raw reply
    think: str = ""
    error: str | None = None  # why the reply did not parse
    parsed: EvlfAnswer | None = None  # the parsed answer, boxes still in the model's convention
    diagnosis: Diagnosis | None = None
    answer: str | None = None  # the VQA reply
    findings: list[Finding] = Field(default_factory=list)
    exemplars: list[Exemplar] = Field(default_factory=list)
    critique: list[str] = Field(default_factory=list)  # errors of the last check, for the next round
    issues: list[CheckIssue] = Field(default_factory=list)
    passed: bool = False
    prompt_version: str | None = None
    model: ModelIdentity | None = None  # the model that answered
    image_sizes: list[tuple[int, int]] = Field(default_factory=list)  # (width, height) the backend fed the model

    def update(self, **changes: Any) -> SpecialistDraft:
        """A copy with `changes` applied (validated, so a node cannot put a wrong type in)."""
        return SpecialistDraft.model_validate({**dict(self), **changes})


#: The types a checkpoint may hold; the serializer revives only these.
CHECKPOINT_TYPES: tuple[type, ...] = (
    SpecialistDraft,
    EvlfAnswer,
    core_answer.AnswerFinding,
    core_answer.AnswerDifferential,
    ModelIdentity,
    BoxConvention,
    core_types.Study,
    core_types.ImageRef,
    core_types.ImageSummary,
    core_types.ImageMeta,
    core_types.Finding,
    core_types.Box,
    core_types.Mask,
    core_types.Exemplar,
    core_types.Diagnosis,
    core_types.DifferentialItem,
    core_types.ReasoningStep,
    core_types.Provenance,
    core_types.Report,
    core_types.CheckIssue,
)


class InputState(TypedDict):
    study: Study


class OutputState(TypedDict):
    report: Report


class State(TypedDict, total=False):
    study: Study
    images: list[ImageSummary]
    scores: dict[str, float]
    specialties: list[str]
    drafts: Annotated[list[SpecialistDraft], operator.add]
    final: SpecialistDraft
    warnings: Annotated[list[str], operator.add]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[dict[str, float], merge_dicts]  # model_calls, tokens_in, tokens_out
    report: Report


class SpecialistState(TypedDict, total=False):
    """State of one specialist branch (the target of a Send from triage)."""

    study: Study
    images: list[ImageSummary]
    specialty: str
    draft: SpecialistDraft
    drafts: Annotated[list[SpecialistDraft], operator.add]
    warnings: Annotated[list[str], operator.add]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[dict[str, float], merge_dicts]
