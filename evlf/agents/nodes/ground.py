"""Ground: the model's answer becomes typed findings with boxes in original-image pixels.

Boxes are decoded through the model family's codec with the size the backend
actually fed the model, so a processor's resize is undone exactly. A box that
cannot be decoded is dropped from the finding with a note and a warning; the
finding itself is kept.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.context import Context
from evlf.agents.state import Draft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.answer import EvlfAnswer
from evlf.core.geometry import BoxCodec, BoxConvention
from evlf.core.plugins import get_host
from evlf.core.types import Box, Diagnosis, DifferentialItem, Finding


def decode_box(coords: list[float], image_index: int, draft: Draft, sizes: list[tuple[int, int]]) -> Box:
    convention = BoxConvention(draft["model"]["box_convention"])
    seen = draft.get("image_sizes") or []
    resized = tuple(seen[image_index]) if image_index < len(seen) else None
    codec = BoxCodec(convention, original=sizes[image_index], resized=resized)  # type: ignore[arg-type]
    return codec.decode(coords, image_index=image_index)


@timed("ground")
def ground(state: SpecialistState, runtime: Runtime[Context]) -> dict[str, Any]:
    draft: Draft = dict(state["draft"])  # type: ignore[assignment]
    if not draft.get("answer_json"):
        return {"draft": {**draft, "findings": [], "diagnosis": None, "answer": None}}
    answer = EvlfAnswer.model_validate(draft["answer_json"])
    specialty = get_host().registries.specialties.get(state["specialty"])
    sizes = [(im.width, im.height) for im in state["images"]]
    warnings: list[str] = []
    findings: list[Finding] = []
    for n, item in enumerate(answer.findings):
        label = specialty.label(item.label)
        boxes: list[Box] = []
        note = None
        if item.box is not None:
            if item.image >= len(sizes):
                note = f"box refers to image {item.image} but the study has {len(sizes)}; box dropped"
            else:
                try:
                    box = decode_box(item.box, item.image, draft, sizes)
                    if box.area > 0:
                        boxes.append(box)
                    else:
                        note = f"box {item.box} has no area inside the image; box dropped"
                except ValueError as exc:
                    note = f"box {item.box} could not be decoded ({exc}); box dropped"
        if note:
            warnings.append(f"{state['specialty']} finding {n + 1} ({item.label}): {note}")
        findings.append(
            Finding(
                label=item.label,
                code=label.code if label else None,
                confidence=item.confidence,
                boxes=boxes,
                status="unverified" if boxes else "ungrounded",
                specialty=state["specialty"],
                note=note,
            )
        )
    primary = specialty.label(answer.diagnosis)
    diagnosis = Diagnosis(
        primary=answer.diagnosis,
        code=primary.code if primary else None,
        confidence=answer.confidence,
        differential=[
            DifferentialItem(label=d.label, code=(specialty.label(d.label).code if specialty.label(d.label) else None), probability=d.probability)
            for d in answer.differential
        ],
    )
    update: Draft = {**draft, "findings": findings, "diagnosis": diagnosis.model_dump(mode="json"), "answer": answer.answer}
    return {"draft": update, "warnings": warnings}
