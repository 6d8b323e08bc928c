"""Build the Report from a specialist draft: one builder for the body, provenance added by the report node.

The verify node checks `draft_report(...)` (what the report would say now);
the report node finishes the same value with provenance and warnings.
"""

from __future__ import annotations

import re

from evlf import __version__
from evlf.agents import defaults
from evlf.agents.context import Context
from evlf.agents.state import SpecialistDraft
from evlf.core.backends.base import ModelIdentity
from evlf.core.plugins import get_host
from evlf.core.types import Finding, ImageSummary, Provenance, ReasoningStep, Report, Study

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


def model_provenance(model: ModelIdentity | None) -> dict[str, object]:
    """Which model answered; the demo weights are recognised by their hash, whatever backend loaded them."""
    if model is None:
        return {"model_id": "none"}
    demo = defaults.is_demo_weights(model.weights_sha256)
    return {
        "model_id": defaults.DEMO_MODEL_NAME if demo else model.name,
        "model_family": model.family,
        "weights_sha256": model.weights_sha256,
        "trained": model.trained,
    }


def draft_report(study: Study, images: list[ImageSummary], draft: SpecialistDraft, specialties: list[str], backend: str) -> Report:
    """The report as the draft stands (what checks see); provenance holds the model only."""
    return Report(
        study_id=study.id,
        task=study.task,
        question=study.question,
        answer=draft.answer,
        specialties=specialties,
        images=images,
        diagnosis=draft.diagnosis,
        findings=draft.findings,
        reasoning=reasoning_steps(draft.think, draft.findings),
        exemplars=draft.exemplars,
        provenance=Provenance(evlf_version=__version__, backend=backend, prompt_version=draft.prompt_version, **model_provenance(draft.model)),  # type: ignore[arg-type]
    )


def finish_report(
    report: Report, settings: Context, draft: SpecialistDraft, *, graph: str, graph_version: str,
    warnings: list[str], timings: dict[str, float], usage: dict[str, float],
) -> Report:
    """The final report: the draft's report with the run's provenance and warnings."""
    prov = report.provenance.model_copy(update={
        "plugin_versions": get_host().plugin_versions(),
        "graph": graph,
        "graph_version": graph_version,
        "seed": settings.seed,
        "timings_ms": {k: round(v, 3) for k, v in timings.items()},
        "model_calls": int(usage.get("model_calls", 0)),
        "tokens_in": int(usage.get("tokens_in", 0)),
        "tokens_out": int(usage.get("tokens_out", 0)),
    })
    notes = list(dict.fromkeys(warnings))
    if draft.error:
        notes.append(f"the model's answer could not be parsed: {draft.error}")
    if not prov.trained and UNTRAINED_WARNING not in notes:
        notes.insert(0, UNTRAINED_WARNING)
    return report.model_copy(update={"provenance": prov, "warnings": notes})
