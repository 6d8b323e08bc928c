"""Retrieve: similar solved cases from the case store, chosen for relevance, diversity and label balance."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.runtime import RunContext
from evlf.agents.state import SpecialistDraft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.types import Exemplar


@timed("retrieve")
def retrieve(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    n = runtime.context.settings.n_exemplars
    draft = state.get("draft") or SpecialistDraft(specialty=state["specialty"])
    if n == 0:
        return {"draft": draft.update(exemplars=[])}
    branch = runtime.context.branch(state["study"], draft.specialty)
    store = branch.store
    if store is None or len(store) == 0:
        return {"draft": draft.update(exemplars=[]), "warnings": ["retrieval skipped: no case store (see `evlf cases starter`)"]}
    from evlf.retrieval.fewshot import select_exemplars

    image = branch.images[0]
    selected = select_exemplars(store, image, n, specialty=draft.specialty)
    if not selected:  # no labelled case of this specialty: fall back to any labelled case of the same modality
        selected = select_exemplars(store, image, n, modality=image.meta.modality)
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
        for s in selected
    ]
    return {"draft": draft.update(exemplars=exemplars)}
