"""Reason: one VLM call with the specialty's prompt, the exemplars as earlier turns, and the answer schema.

The call goes through the run's micro-batcher, so concurrent studies share a
batch. A previous round's critique (from verify) is appended to the prompt.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents import resources
from evlf.agents.context import Context
from evlf.agents.state import Draft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import GenerationRequest, Turn
from evlf.core.geometry import BoxConvention
from evlf.core.plugins import get_host
from evlf.core.prompts import DEFAULT_BOX_FORMAT
from evlf.core.specialty import Specialty, SpecialtyOptions
from evlf.core.types import Exemplar, LoadedImage, Study

BOX_WORDING: dict[BoxConvention, str] = {
    BoxConvention.PIXELS: "[x0, y0, x1, y1] in pixels of the original image (top-left, bottom-right)",
    BoxConvention.RESIZED_PIXELS: "[x0, y0, x1, y1] in pixels of the image as you see it (top-left, bottom-right)",
    BoxConvention.GRID_1000: "[x0, y0, x1, y1] on a 0-1000 grid over the image width and height (top-left, bottom-right)",
    BoxConvention.UNIT: "[x0, y0, x1, y1] as fractions 0-1 of the image width and height (top-left, bottom-right)",
}


def exemplar_turns(ctx: Context, exemplars: list[Exemplar], convention: BoxConvention) -> tuple[list[Turn], list[Exemplar]]:
    """Rebuild the exemplar turns (images are not kept in state) and fill each exemplar's answer."""
    if not exemplars:
        return [], []
    store = resources.current(ctx).get_store()
    if store is None:
        return [], exemplars
    from evlf.retrieval.fewshot import Selected
    from evlf.retrieval.fewshot import exemplar_turns as build_turns

    selected = [Selected(case=store.get(e.case_id), similarity=e.similarity) for e in exemplars]
    shot = build_turns(selected, convention)
    return shot.turns, shot.exemplars


def compose_request(
    study: Study,
    images: list[LoadedImage],
    specialty: Specialty,
    options: SpecialtyOptions,
    convention: BoxConvention,
    *,
    exemplar_turns: list[Turn] | None = None,
    exemplars: list[Exemplar] | None = None,
    critique: list[str] | None = None,
    max_new_tokens: int = 384,
    temperature: float = 0.0,
    seed: int | None = None,
    constrained: bool = True,
    closed_labels: bool = False,
    request_id: str | None = None,
) -> tuple[GenerationRequest, str]:
    """The exact request the graph sends for a study (training reuses it so a model learns what it will see).

    Returns the request and the prompt version.
    """
    prompt = specialty.build_prompt(study, images, list(exemplars or []), study.task, options)
    wording = BOX_WORDING[convention]
    system = prompt.system.replace(DEFAULT_BOX_FORMAT, wording)
    user = prompt.user
    if DEFAULT_BOX_FORMAT not in prompt.system:
        user += f"\n\nWrite every box as {wording}."
    if critique:
        user += "\n\nA check of your previous answer found problems; correct them:\n" + "\n".join(f"- {c}" for c in critique)
    request = GenerationRequest(
        system=system,
        turns=[*(exemplar_turns or []), Turn(role="user", text=user, images=[im.rgb for im in images])],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        json_schema=answer_json_schema((specialty.label_names() or None) if closed_labels else None) if constrained else None,
        request_id=request_id,
    )
    return request, prompt.version


@timed("reason")
async def reason(state: SpecialistState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    res = resources.current(ctx)
    study = state["study"]
    draft: Draft = dict(state.get("draft") or {})  # type: ignore[assignment]
    name = state["specialty"]
    specialty = get_host().registries.specialties.get(name)
    options = specialty.Options()
    images = specialty.preprocess(res.load_images(study.images), options)
    backend = res.get_backend()
    identity = backend.identity
    turns, exemplars = exemplar_turns(ctx, list(draft.get("exemplars") or []), identity.box_convention)
    request, prompt_version = compose_request(
        study,
        images,
        specialty,
        options,
        identity.box_convention,
        exemplar_turns=turns,
        exemplars=exemplars,
        critique=list(draft.get("critique") or []),
        max_new_tokens=ctx.max_new_tokens,
        temperature=ctx.temperature,
        seed=ctx.seed,
        constrained=ctx.constrained,
        closed_labels=ctx.closed_labels,
        request_id=f"{study.id}:{name}:{draft.get('round', 0)}",
    )
    generation = (await res.batcher().submit([request]))[0]
    answer = generation.answer
    if answer is not None:
        answer = specialty.postprocess(answer, images, options)
    new: Draft = {
        **draft,
        "specialty": name,
        "round": int(draft.get("round", 0)) + 1,
        "text": generation.text,
        "think": generation.think,
        "error": generation.error,
        "answer_json": answer.model_dump(mode="json") if answer is not None else None,
        "exemplars": exemplars,
        "prompt_version": prompt_version,
        "model": generation.model.model_dump(mode="json"),
        "image_sizes": [list(s) for s in generation.image_sizes],
    }
    usage = {"model_calls": 1, "tokens_in": generation.tokens_in, "tokens_out": generation.tokens_out}
    return {"draft": new, "usage": usage}
