"""Retrieve: similar solved cases from the case store, chosen for relevance, diversity and label balance.

Exemplars stay within the study's modality unless `Context.cross_modality_exemplars`;
when none qualify (no store, an unlabelled store, no case of this modality)
the report says so in its warnings.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.runtime import RunContext
from evlf.agents.state import SpecialistDraft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.evidence import study_evidence
from evlf.core.types import Exemplar

NO_STORE = "retrieval skipped: no case store; build one from labelled cases with `evlf cases add DATA.jsonl` (docs/dataset-format.md)"


@timed("retrieve")
def retrieve(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    settings = runtime.context.settings
    draft = state.get("draft") or SpecialistDraft(specialty=state["specialty"])
    if settings.n_exemplars == 0:
        return {"draft": draft.update(exemplars=[])}
    branch = runtime.context.branch(state["study"], draft.specialty)
    store = branch.store
    if store is None or len(store) == 0:
        return {"draft": draft.update(exemplars=[]), "warnings": [NO_STORE]}
    from evlf.retrieval.choice import choose_exemplars

    choice = choose_exemplars(
        store,
        branch.images[0],
        settings.n_exemplars,
        specialty=draft.specialty,
        modalities=study_evidence(state["study"], branch.images).modalities,
        cross_modality=settings.cross_modality_exemplars,
    )
    exemplars = [
        Exemplar(
            case_id=s.case.case_id,
            similarity=s.similarity,
            modality=s.case.modality,
            specialty=s.case.specialty,
            labels=s.case.labels,
            source=s.case.source,
            licence=s.case.licence,
            image_path=s.case.image_path,
        )
        for s in choice.selected
    ]
    update: dict[str, Any] = {"draft": draft.update(exemplars=exemplars)}
    if choice.warning:
        update["warnings"] = [f"{draft.specialty}: {choice.warning}"]
    return update
