"""Verify: every plugin's report_checks plus box agreement; errors send the draft back to reason.

The loop is bounded by Context.verify_rounds; after the last round the draft
goes on with its problems listed as warnings, never silently fixed.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from evlf.agents import resources
from evlf.agents.assemble import assemble
from evlf.agents.context import Context
from evlf.agents.state import Draft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.plugins import get_host
from evlf.core.types import CheckIssue


def run_checks(state: SpecialistState, ctx: Context, draft: Draft) -> list[CheckIssue]:
    issues: list[CheckIssue] = []
    if draft.get("error") or not draft.get("answer_json"):
        issues.append(CheckIssue(check="answer-format", severity="error", message=f"the answer did not parse: {draft.get('error')}"))
        return issues
    report = assemble(
        study=state["study"],
        images=state["images"],
        draft=draft,
        specialties=[state["specialty"]],
        ctx=ctx,
        graph="verify",
        graph_version="0",
        warnings=[],
        timings={},
        usage={},
    )
    images = resources.current(ctx).load_images(state["study"].images)
    for result in get_host().hook.report_checks(report=report, images=images):
        issues.extend(CheckIssue.model_validate(i) if not isinstance(i, CheckIssue) else i for i in result or [])
    for n, finding in enumerate(report.findings):
        if finding.status == "unverified":
            issues.append(
                CheckIssue(
                    check="box-agreement",
                    severity="warning",
                    finding=n,
                    message=f"finding {n + 1} ({finding.label}): the segmenter does not confirm the box (agreement {finding.agreement or 0:.2f})",
                )
            )
    return issues


@timed("verify")
def verify(state: SpecialistState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    draft: Draft = dict(state["draft"])  # type: ignore[assignment]
    issues = run_checks(state, ctx, draft)
    errors = [i for i in issues if i.severity == "error"]
    can_retry = int(draft.get("round", 1)) <= ctx.verify_rounds
    draft["issues"] = [i.model_dump(mode="json") for i in issues]
    draft["passed"] = not errors
    if errors and can_retry:
        draft["critique"] = [i.message for i in errors]
        return {"draft": draft}
    warnings = [f"{state['specialty']}: {i.message}" for i in issues]
    return {"draft": draft, "warnings": warnings}


def after_verify(state: SpecialistState, runtime: Runtime[Context]) -> Literal["reason", "finish"]:
    draft = state["draft"]
    if not draft.get("passed") and int(draft.get("round", 1)) <= runtime.context.verify_rounds:
        return "reason"
    return "finish"


def finish(state: SpecialistState) -> dict[str, Any]:
    """Hand the specialist's draft to the parent graph."""
    draft = dict(state["draft"])
    draft.pop("critique", None)
    return {"drafts": [draft]}
