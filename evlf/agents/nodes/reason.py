"""Reason: one VLM call with the specialty's prompt, the exemplars as earlier turns, and the answer schema.

The call goes through the run's micro-batcher, so concurrent studies share a
batch. A previous round's critique (from verify) is appended to the prompt.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.request import BOX_WORDING, compose_request, exemplar_turns
from evlf.agents.runtime import RunContext
from evlf.agents.state import SpecialistDraft, SpecialistState
from evlf.agents.timing import timed

__all__ = ["BOX_WORDING", "compose_request", "reason"]  # the first two: kept importable here for evlf.training


@timed("reason")
async def reason(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    settings = runtime.context.settings
    study = state["study"]
    draft = state.get("draft") or SpecialistDraft(specialty=state["specialty"])
    branch = runtime.context.branch(study, draft.specialty)
    turns, exemplars = exemplar_turns(branch.store if draft.exemplars else None, draft.exemplars, branch.convention)
    request, prompt_version = compose_request(
        study,
        branch.model_images,
        branch.specialty,
        branch.options,
        branch.convention,
        exemplar_turns=turns,
        exemplars=exemplars,
        critique=draft.critique,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        constrained=settings.constrained,
        closed_labels=settings.closed_labels,
        request_id=f"{study.id}:{draft.specialty}:{draft.round}",
    )
    generation = (await branch.resources.batcher().submit([request]))[0]
    parsed = generation.answer
    if parsed is not None:
        parsed = branch.specialty.postprocess(parsed, branch.model_images, branch.options)
    new = draft.update(
        round=draft.round + 1,
        text=generation.text,
        think=generation.think or "",
        error=generation.error,
        parsed=parsed,
        exemplars=exemplars,
        prompt_version=prompt_version,
        model=generation.model,
        image_sizes=[tuple(s) for s in generation.image_sizes],
    )
    usage = {"model_calls": 1, "tokens_in": generation.tokens_in, "tokens_out": generation.tokens_out}
    return {"draft": new, "usage": usage}
