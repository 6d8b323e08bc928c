"""Retrieve: similar solved cases from the case store, chosen for relevance, diversity and label balance."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents import resources
from evlf.agents.context import Context
from evlf.agents.state import SpecialistState
from evlf.agents.timing import timed
from evlf.core.types import Exemplar


@timed("retrieve")
def retrieve(state: SpecialistState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    draft = dict(state.get("draft") or {})
    draft.setdefault("specialty", state["specialty"])
    if ctx.n_exemplars == 0:
        return {"draft": {**draft, "exemplars": []}}
    res = resources.current(ctx)
    store = res.get_store()
    if store is None or len(store) == 0:
        return {"draft": {**draft, "exemplars": []}, "warnings": ["retrieval skipped: no case store (see `evlf cases starter`)"]}
    from evlf.retrieval.fewshot import select_exemplars

    image = res.load_images(state["study"].images[:1])[0]
    selected = select_exemplars(store, image, ctx.n_exemplars, specialty=state["specialty"])
    if not selected:  # no labelled case of this specialty: fall back to any labelled case of the same modality
        selected = select_exemplars(store, image, ctx.n_exemplars, modality=image.meta.modality)
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
    return {"draft": {**draft, "exemplars": exemplars}}
