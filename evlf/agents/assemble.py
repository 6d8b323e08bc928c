"""Build a Report from a draft: findings, diagnosis, reasoning steps that cite findings, provenance."""

from __future__ import annotations

import re
from typing import Any

from evlf import __version__
from evlf.agents.context import Context
from evlf.agents.state import Draft
from evlf.core.plugins import get_host
from evlf.core.types import (
    Diagnosis,
    Exemplar,
    Finding,
    ImageSummary,
    Provenance,
    ReasoningStep,
    Report,
    Study,
)

UNTRAINED_WARNING = "the model is untrained (random weights): this report shows how evlf works and says nothing about the images"

_STEP_SPLIT = re.compile(r"(?:\n+|(?<=[.!?])\s+)")


def reasoning_steps(think: str, findings: list[Finding]) -> list[ReasoningStep]:
    """Split the model's reasoning into steps; a step cites the findings whose label it mentions."""
    parts = [p.strip() for p in _STEP_SPLIT.split(think or "") if p and p.strip()]
    steps = []
    for part in parts[:40]:
        lowered = part.lower()
        cites = [i for i, f in enumerate(findings) if f.label and f.label.lower() in lowered]
        steps.append(ReasoningStep(text=part[:2000], cites=cites))
    return steps


def provenance(ctx: Context, draft: Draft, graph: str, graph_version: str, timings: dict[str, float], usage: dict[str, float]) -> Provenance:
    model: dict[str, Any] = draft.get("model") or {}
    return Provenance(
        evlf_version=__version__,
        model_id=model.get("name", "none"),
        model_family=model.get("family"),
        weights_sha256=model.get("weights_sha256"),
        trained=bool(model.get("trained", True)),
        backend=ctx.backend,
        prompt_version=draft.get("prompt_version"),
        plugin_versions=get_host().plugin_versions(),
        graph=graph,
        graph_version=graph_version,
        seed=ctx.seed,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        model_calls=int(usage.get("model_calls", 0)),
        tokens_in=int(usage.get("tokens_in", 0)),
        tokens_out=int(usage.get("tokens_out", 0)),
    )


def assemble(
    *,
    study: Study,
    images: list[ImageSummary],
    draft: Draft,
    specialties: list[str],
    ctx: Context,
    graph: str,
    graph_version: str,
    warnings: list[str],
    timings: dict[str, float],
    usage: dict[str, float],
) -> Report:
    findings: list[Finding] = list(draft.get("findings") or [])
    diagnosis = Diagnosis.model_validate(draft["diagnosis"]) if draft.get("diagnosis") else None
    prov = provenance(ctx, draft, graph, graph_version, timings, usage)
    notes = list(dict.fromkeys(warnings))
    if draft.get("error"):
        notes.append(f"the model's answer could not be parsed: {draft['error']}")
    if not prov.trained and UNTRAINED_WARNING not in notes:
        notes.insert(0, UNTRAINED_WARNING)
    exemplars: list[Exemplar] = list(draft.get("exemplars") or [])
    return Report(
        study_id=study.id,
        task=study.task,
        question=study.question,
        answer=draft.get("answer"),
        specialties=specialties,
        images=images,
        diagnosis=diagnosis,
        findings=findings,
        reasoning=reasoning_steps(draft.get("think") or "", findings),
        exemplars=exemplars,
        warnings=notes,
        provenance=prov,
    )
