"""Refine: every box becomes a mask and a tight box; agreement decides verified, adjusted or unverified.

All boxes of one image go to the refiner in one call (SAM encodes the image
once; see evlf.core.agreement.verify_findings). Thresholds come from the
specialty's options unless the Context overrides them.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.context import Context
from evlf.agents.runtime import RunContext
from evlf.agents.state import SpecialistState
from evlf.agents.timing import timed
from evlf.core.agreement import AgreementPolicy, verify_findings
from evlf.core.errors import InputError
from evlf.core.specialty import SpecialtyOptions


def policy_for(settings: Context, options: SpecialtyOptions) -> AgreementPolicy:
    return AgreementPolicy(
        verify_iou=settings.verify_iou if settings.verify_iou is not None else options.verify_iou,
        adjust_iou=settings.adjust_iou if settings.adjust_iou is not None else options.adjust_iou,
    )


@timed("refine")
def refine(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    draft = state["draft"]
    if not any(f.boxes for f in draft.findings):
        return {"draft": draft}
    branch = runtime.context.branch(state["study"], draft.specialty)
    try:
        refined = verify_findings(draft.findings, branch.images, branch.refiner, policy_for(runtime.context.settings, branch.options))
    except InputError as exc:  # ground clips boxes, so this is a refiner refusing an image: keep the boxes, say so
        return {"draft": draft, "warnings": [f"refinement skipped: {exc.problem}"]}
    return {"draft": draft.update(findings=refined)}
