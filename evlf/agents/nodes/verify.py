"""Verify: the specialty's own checks, every plugin's report_checks, and box agreement.

Errors send the draft back to reason, bounded by Context.verify_rounds; after
the last round the draft goes on with its problems listed as warnings, never
silently fixed.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from evlf.agents.assemble import draft_report
from evlf.agents.runtime import Branch, RunContext
from evlf.agents.state import SpecialistDraft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.plugins import get_host
from evlf.core.types import CheckIssue, ImageSummary, Study


def run_checks(study: Study, images: list[ImageSummary], draft: SpecialistDraft, branch: Branch) -> list[CheckIssue]:
    if draft.error or draft.parsed is None:
        return [CheckIssue(check="answer-format", severity="error", message=f"the answer did not parse: {draft.error}")]
    report = draft_report(study, images, draft, [draft.specialty], branch.backend.name)
    found = list(branch.specialty.checks(report, branch.images))
    for result in get_host().hook.report_checks(report=report, images=branch.images):
        found.extend(i if isinstance(i, CheckIssue) else CheckIssue.model_validate(i) for i in result or [])
    issues: list[CheckIssue] = []
    for issue in found:  # a plugin whose hook re-runs its specialty's checks must not list them twice
        if issue not in issues:
            issues.append(issue)
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
def verify(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    draft = state["draft"]
    branch = runtime.context.branch(state["study"], draft.specialty)
    issues = run_checks(state["study"], state["images"], draft, branch)
    errors = [i for i in issues if i.severity == "error"]
    checked = draft.update(issues=issues, passed=not errors, critique=[i.message for i in errors])
    if errors and draft.round <= runtime.context.settings.verify_rounds:
        return {"draft": checked}
    return {"draft": checked, "warnings": [f"{draft.specialty}: {i.message}" for i in issues]}


def after_verify(state: SpecialistState, runtime: Runtime[RunContext]) -> Literal["reason", "finish"]:
    draft = state["draft"]
    if not draft.passed and draft.round <= runtime.context.settings.verify_rounds:
        return "reason"
    return "finish"


def finish(state: SpecialistState) -> dict[str, Any]:
    """Hand the specialist's draft to the parent graph."""
    return {"drafts": [state["draft"].update(critique=[])]}
