"""Refine: every box becomes a mask and a tight box; agreement decides verified, adjusted or unverified.

All boxes of one image go to the refiner in one call (SAM encodes the image
once). Thresholds come from the specialty's options unless the Context
overrides them.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents import resources
from evlf.agents.context import Context
from evlf.agents.state import Draft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.agreement import AgreementPolicy, apply_agreement
from evlf.core.errors import InputError
from evlf.core.plugins import get_host
from evlf.core.refine import Refinement
from evlf.core.types import Finding


def policy_for(ctx: Context, specialty_name: str) -> AgreementPolicy:
    options = get_host().registries.specialties.get(specialty_name).Options()
    return AgreementPolicy(
        verify_iou=ctx.verify_iou if ctx.verify_iou is not None else options.verify_iou,
        adjust_iou=ctx.adjust_iou if ctx.adjust_iou is not None else options.adjust_iou,
    )


@timed("refine")
def refine(state: SpecialistState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    draft: Draft = dict(state["draft"])  # type: ignore[assignment]
    findings: list[Finding] = list(draft.get("findings") or [])
    if not any(f.boxes for f in findings):
        return {"draft": draft}
    res = resources.current(ctx)
    refiner = res.get_refiner()
    images = res.load_images(state["study"].images)
    policy = policy_for(ctx, state["specialty"])
    warnings: list[str] = []
    # (finding index, box index) per image, so each image is refined in one call
    slots: dict[int, list[tuple[int, int]]] = {}
    for fi, finding in enumerate(findings):
        for bi, box in enumerate(finding.boxes):
            slots.setdefault(box.image_index, []).append((fi, bi))
    results: dict[tuple[int, int], Refinement] = {}
    for image_index, where in slots.items():
        boxes = [findings[fi].boxes[bi] for fi, bi in where]
        try:
            refined = refiner.refine(images[image_index], boxes)
        except InputError as exc:
            warnings.append(f"refinement skipped on image {image_index}: {exc.problem}")
            continue
        results.update(zip(where, refined))
    out: list[Finding] = []
    for fi, finding in enumerate(findings):
        keys = [(fi, bi) for bi in range(len(finding.boxes))]
        if finding.boxes and all(k in results for k in keys):
            out.append(apply_agreement(finding, [results[k] for k in keys], policy))
        else:
            out.append(finding)
    return {"draft": {**draft, "findings": out}, "warnings": warnings}
