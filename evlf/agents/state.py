"""Graph state: the input (a Study), the working fields nodes fill, and the output (a Report).

Only plain, serialisable data lives here, so a SQLite checkpointer can resume a
run in a new process; images and models are re-obtained from resources.py.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from evlf.core.types import Exemplar, Finding, ImageSummary, Report, Study


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(left or {})
    for key, value in (right or {}).items():
        if isinstance(value, (int, float)) and isinstance(out.get(key), (int, float)):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


class Draft(TypedDict, total=False):
    """One specialist's answer for the study, as it moves through reason -> ground -> refine -> verify."""

    specialty: str
    round: int
    text: str
    think: str
    error: str | None
    answer_json: dict[str, Any] | None  # the parsed EvlfAnswer, boxes still in the model's convention
    diagnosis: dict[str, Any] | None  # evlf.core.types.Diagnosis as a dict
    answer: str | None  # the VQA reply
    findings: list[Finding]
    exemplars: list[Exemplar]
    critique: list[str]
    issues: list[dict[str, Any]]
    prompt_version: str
    model: dict[str, Any]
    image_sizes: list[list[int]]
    passed: bool


class InputState(TypedDict):
    study: Study


class OutputState(TypedDict):
    report: Report


class State(TypedDict, total=False):
    study: Study
    images: list[ImageSummary]
    scores: dict[str, float]
    specialties: list[str]
    drafts: Annotated[list[Draft], operator.add]
    final: Draft
    warnings: Annotated[list[str], operator.add]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[dict[str, float], merge_dicts]  # model_calls, tokens_in, tokens_out
    report: Report


class SpecialistState(TypedDict, total=False):
    """State of one specialist branch (the target of a Send from triage)."""

    study: Study
    images: list[ImageSummary]
    specialty: str
    draft: Draft
    drafts: Annotated[list[Draft], operator.add]
    warnings: Annotated[list[str], operator.add]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[dict[str, float], merge_dicts]
