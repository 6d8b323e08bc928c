"""Refine: every box becomes a mask and a tight box; agreement decides verified, adjusted or unverified.

All boxes of one image go to the refiner in one call (SAM encodes the image
once; see evlf.core.agreement.verify_findings). Thresholds come from the specialty's options unless the Context
overrides them.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents import resources
from evlf.agents.context import Context
from evlf.agents.state import Draft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.agreement import AgreementPolicy, verify_findings
from evlf.core.errors import InputError
from evlf.core.plugins import get_host
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
    try:
        refined = verify_findings(findings, res.load_images(state["study"].images), res.get_refiner(), policy_for(ctx, state["specialty"]))
    except InputError as exc:  # ground clips boxes, so this is a refiner refusing an image: keep the boxes, say so
        return {"draft": draft, "warnings": [f"refinement skipped: {exc.problem}"]}
    return {"draft": {**draft, "findings": refined}}
