"""Triage: route the study to one or more specialties, then fan out with Send.

Routing itself (explicit choice, the select_specialties hook, scores and the
modality gate) lives in evlf.core.routing; this node adds the run's allow-list
and the panel size.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from evlf.agents.runtime import RunContext
from evlf.agents.state import State
from evlf.agents.timing import timed
from evlf.core.routing import route


@timed("triage")
def triage(state: State, runtime: Runtime[RunContext]) -> dict[str, Any]:
    settings = runtime.context.settings
    study = state["study"]
    decision = route(study, runtime.context.images(study), allow=settings.specialties)
    return {"specialties": decision.chosen, "scores": decision.scores, "warnings": decision.warnings}


@timed("triage")
def triage_panel(state: State, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Like triage, but keeps up to `panel_size` accepting specialties so several specialists read the study."""
    settings = runtime.context.settings
    study = state["study"]
    decision = route(study, runtime.context.images(study), allow=settings.specialties, margin=1.0)
    if decision.reason != "scores":
        return {"specialties": decision.chosen, "scores": decision.scores, "warnings": decision.warnings}
    accepting = sorted((k for k, v in decision.scores.items() if v > 0), key=lambda k: -decision.scores[k])
    return {"specialties": accepting[: settings.panel_size], "scores": decision.scores, "warnings": decision.warnings}


def fan_out(state: State) -> list[Send]:
    """One specialist branch per routed specialty, run in parallel."""
    return [
        Send("specialist", {"study": state["study"], "images": state["images"], "specialty": name})
        for name in state["specialties"]
    ]
