"""Report: assemble the final Report; optionally pause for a human to approve or edit it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from evlf.agents.assemble import assemble
from evlf.agents.context import Context
from evlf.agents.state import State
from evlf.agents.timing import timed
from evlf.core.types import Report


def make_report_node(graph: str, version: str) -> Callable[[State, Runtime[Context]], dict[str, Any]]:
    @timed("report")
    def report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = runtime.context
        draft = state["final"]
        result = assemble(
            study=state["study"],
            images=state["images"],
            draft=draft,
            specialties=list(state.get("specialties") or []),
            ctx=ctx,
            graph=graph,
            graph_version=version,
            warnings=list(state.get("warnings") or []),
            timings=dict(state.get("timings_ms") or {}),
            usage=dict(state.get("usage") or {}),
        )
        if ctx.review:
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
