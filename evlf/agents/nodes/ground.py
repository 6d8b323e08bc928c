"""Ground: the model's answer becomes typed findings with boxes in original-image pixels.

Boxes are decoded through the model family's codec with the size the backend
actually fed the model, so a processor's resize is undone exactly. A box that
cannot be decoded is dropped from the finding with a note and a warning; the
finding itself is kept.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from evlf.agents.runtime import RunContext
from evlf.agents.state import SpecialistDraft, SpecialistState
from evlf.agents.timing import timed
from evlf.core.geometry import BoxCodec
from evlf.core.specialty import Specialty
from evlf.core.types import Box, Diagnosis, DifferentialItem, Finding


def decode_box(coords: list[float], image_index: int, draft: SpecialistDraft, sizes: list[tuple[int, int]]) -> Box:
    if draft.model is None:
        raise ValueError("no model identity recorded for the answer")
    seen = draft.image_sizes
    resized = tuple(seen[image_index]) if image_index < len(seen) else None
    codec = BoxCodec(draft.model.box_convention, original=sizes[image_index], resized=resized)  # type: ignore[arg-type]
    return codec.decode(coords, image_index=image_index)


def code_of(specialty: Specialty, label: str) -> str | None:
    found = specialty.label(label)
    return found.code if found else None


@timed("ground")
def ground(state: SpecialistState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    draft = state["draft"]
    if draft.parsed is None:
        return {"draft": draft.update(findings=[], diagnosis=None, answer=None)}
    answer = draft.parsed
    specialty = runtime.context.branch(state["study"], draft.specialty).specialty
    sizes = [(im.width, im.height) for im in state["images"]]
    warnings: list[str] = []
    findings: list[Finding] = []
    for n, item in enumerate(answer.findings):
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
            warnings.append(f"{draft.specialty} finding {n + 1} ({item.label}): {note}")
        findings.append(
            Finding(
                label=item.label,
                code=code_of(specialty, item.label),
                confidence=item.confidence,
                boxes=boxes,
                status="unverified" if boxes else "ungrounded",
                specialty=draft.specialty,
                note=note,
            )
        )
    diagnosis = Diagnosis(
        primary=answer.diagnosis,
        code=code_of(specialty, answer.diagnosis),
        confidence=answer.confidence,
        differential=[DifferentialItem(label=d.label, code=code_of(specialty, d.label), probability=d.probability) for d in answer.differential],
    )
    return {"draft": draft.update(findings=findings, diagnosis=diagnosis, answer=answer.answer), "warnings": warnings}
