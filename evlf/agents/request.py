"""The exact model request for a study: the specialty's options, prompt, exemplar turns and answer schema.

One place builds it, so the graph's reason node and training (evlf.training.examples)
send the model the same words.
"""

from __future__ import annotations

from typing import Any

from evlf.core.answer import answer_json_schema
from evlf.core.backends.base import GenerationRequest, Turn
from evlf.core.geometry import BoxConvention
from evlf.core.specialty import Specialty, SpecialtyOptions
from evlf.core.types import Exemplar, LoadedImage, Study

BOX_WORDING: dict[BoxConvention, str] = {
    BoxConvention.PIXELS: "[x0, y0, x1, y1] in pixels of the original image (top-left, bottom-right)",
    BoxConvention.RESIZED_PIXELS: "[x0, y0, x1, y1] in pixels of the image as you see it (top-left, bottom-right)",
    BoxConvention.GRID_1000: "[x0, y0, x1, y1] on a 0-1000 grid over the image width and height (top-left, bottom-right)",
    BoxConvention.UNIT: "[x0, y0, x1, y1] as fractions 0-1 of the image width and height (top-left, bottom-right)",
}


def specialty_options(specialty: Specialty, convention: BoxConvention, **overrides: Any) -> SpecialtyOptions:
    """The specialty's options with the box format of the backend's convention set (the one way to build them)."""
    return specialty.options(**{"box_format": BOX_WORDING[convention], **overrides})


def exemplar_turns(store: Any | None, exemplars: list[Exemplar], convention: BoxConvention) -> tuple[list[Turn], list[Exemplar]]:
    """Rebuild the exemplar turns (images are not kept in state) and fill each exemplar's answer."""
    if not exemplars or store is None:
        return [], list(exemplars)
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
    """The request the graph sends for a study, and the prompt version.

    Options without a box format get the convention's; a specialty whose own
    prompt does not use the box format is told it at the end of the user turn.
    """
    wording = BOX_WORDING[convention]
    if options.box_format is None:
        options = options.model_copy(update={"box_format": wording})
    prompt = specialty.build_prompt(study, images, list(exemplars or []), study.task, options)
    user = prompt.user
    if options.box_format not in prompt.system and options.box_format not in prompt.user:
        user += f"\n\nWrite every box as {options.box_format}."
    if critique:
        user += "\n\nA check of your previous answer found problems; correct them:\n" + "\n".join(f"- {c}" for c in critique)
    schema = answer_json_schema((specialty.label_names() or None) if closed_labels else None) if constrained else None
    request = GenerationRequest(
        system=prompt.system,
        turns=[*(exemplar_turns or []), Turn(role="user", text=user, images=[im.rgb for im in images])],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        json_schema=schema,
        request_id=request_id,
    )
    return request, prompt.version
