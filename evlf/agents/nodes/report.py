"""Report: assemble the final Report; optionally pause for a human to approve or edit it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from evlf.agents.assemble import draft_report, finish_report
from evlf.agents.runtime import RunContext
from evlf.agents.state import State
from evlf.agents.timing import timed
from evlf.core.types import Report


def make_report_node(graph: str, version: str) -> Callable[[State, Runtime[RunContext]], dict[str, Any]]:
    @timed("report")
    def report(state: State, runtime: Runtime[RunContext]) -> dict[str, Any]:
        settings = runtime.context.settings
        draft = state["final"]
        backend = runtime.context.resources.get_backend().name
        body = draft_report(state["study"], state["images"], draft, list(state.get("specialties") or []), backend)
        result = finish_report(
            body, settings, draft, graph=graph, graph_version=version, warnings=list(state.get("warnings") or []),
            timings=dict(state.get("timings_ms") or {}), usage=dict(state.get("usage") or {}),
        )
        if settings.review:
            decision = interrupt({"draft": result.model_dump(mode="json")})
            result = apply_review(result, decision)
        return {"report": result}

    return report


def apply_review(draft: Report, decision: Any) -> Report:
    """`{"action": "approve"}` keeps the draft; `{"action": "edit", "report": {...}}` replaces it (validated)."""
    if not isinstance(decision, dict) or decision.get("action") not in ("approve", "edit"):
        raise ValueError("a review decision is {'action': 'approve'} or {'action': 'edit', 'report': {...}}")
    if decision["action"] == "approve":
        return draft.model_copy(update={"warnings": [*draft.warnings, "reviewed and approved by a person"]})
    edited = Report.model_validate(decision["report"])
    return edited.model_copy(update={"provenance": draft.provenance, "warnings": [*edited.warnings, "edited by a person after review"]})
