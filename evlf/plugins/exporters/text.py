"""JSON rendering and the wording every human-readable format shares."""

from __future__ import annotations

from typing import Any

from evlf.core.types import Finding, Report

NOT_CLINICAL = "Research software. Not for clinical use: do not base any diagnosis or treatment on this report."


def render_json(report: Report, images: list[Any] | None = None) -> str:
    return report.model_dump_json(indent=2)


def model_banner(report: Report) -> str | None:
    p = report.provenance
    if not p.trained:
        return f"The model ({p.model_id}) is untrained: random weights. The findings below demonstrate the pipeline and say nothing about the images."
    if p.model_id.startswith("evlf-demo"):
        return f"The model ({p.model_id}) is evlf's demo model, trained on synthetic lesions only: its answers on real images are meaningless."
    return None


def box_text(finding: Finding) -> str:
    if not finding.boxes:
        return "no box"
    return "; ".join(
        f"image {b.image_index}: ({b.x0:.0f}, {b.y0:.0f})-({b.x1:.0f}, {b.y1:.0f})" for b in finding.boxes
    )
