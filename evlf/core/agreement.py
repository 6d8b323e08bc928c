"""The agreement policy: how far a refiner may move a model's box before the box stops counting as checked.

A box the refiner confirms (IoU >= verify_iou) is *verified* and kept as drawn;
one it moves moderately (adjust_iou <= IoU < verify_iou) is *adjusted*: the
refined tight box replaces the model's; one it cannot confirm (IoU below
adjust_iou, or an empty mask) stays *unverified*: kept as drawn and flagged,
never silently dropped, so a reader sees what the model claimed and that the
check failed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from evlf.core.refine import Refinement, Refiner
from evlf.core.specialty import SpecialtyOptions
from evlf.core.types import Box, Finding, LoadedImage, Mask

BoxStatus = Literal["verified", "adjusted", "unverified"]
_RANK: dict[str, int] = {"verified": 0, "adjusted": 1, "unverified": 2}


class AgreementPolicy(BaseModel):
    """IoU thresholds between a model box and its refined box (per specialty, from SpecialtyOptions)."""

    verify_iou: float = Field(0.7, ge=0.0, le=1.0)
    adjust_iou: float = Field(0.3, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> AgreementPolicy:
        if self.adjust_iou > self.verify_iou:
            raise ValueError(f"adjust_iou ({self.adjust_iou}) must not exceed verify_iou ({self.verify_iou})")
        return self

    @classmethod
    def from_options(cls, options: SpecialtyOptions) -> AgreementPolicy:
        return cls(verify_iou=options.verify_iou, adjust_iou=options.adjust_iou)


class BoxDecision(BaseModel):
    status: BoxStatus
    box: Box  # the box the report keeps: the model's, or the refined one when adjusted
    agreement: float
    reason: str


def decide(model_box: Box, refinement: Refinement, policy: AgreementPolicy) -> BoxDecision:
    """The status of one model box given its refinement."""
    agreement = refinement.agreement
    if refinement.mask.area == 0:
        return BoxDecision(
            status="unverified", box=model_box, agreement=0.0, reason="the refiner found nothing in the box"
        )
    if agreement >= policy.verify_iou:
        return BoxDecision(
            status="verified",
            box=model_box,
            agreement=agreement,
            reason=f"refiner agreement {agreement:.2f} >= {policy.verify_iou:.2f}",
        )
    if agreement >= policy.adjust_iou:
        refined = refinement.box.model_copy(update={"image_index": model_box.image_index})
        return BoxDecision(
            status="adjusted",
            box=refined,
            agreement=agreement,
            reason=f"refiner agreement {agreement:.2f} < {policy.verify_iou:.2f}; box replaced by the refined box",
        )
    return BoxDecision(
        status="unverified",
        box=model_box,
        agreement=agreement,
        reason=f"refiner agreement {agreement:.2f} < {policy.adjust_iou:.2f}; box kept as drawn",
    )


def _union(masks: list[Mask]) -> Mask | None:
    if not masks:
        return None
    first = masks[0]
    same = [m for m in masks if (m.height, m.width, m.image_index) == (first.height, first.width, first.image_index)]
    merged = np.logical_or.reduce([m.to_array() for m in same])
    return Mask.from_array(merged, image_index=first.image_index)


def apply_agreement(finding: Finding, refinements: list[Refinement], policy: AgreementPolicy) -> Finding:
    """A copy of `finding` with each box decided; the finding takes its least-confirmed box's status.

    `refinements[i]` refines `finding.boxes[i]`. The mask is the union of the
    masks of the boxes that were not left unverified (on the first such box's
    image); `refined_box` is the first box's refinement; `agreement` is the
    lowest over the boxes. A finding without boxes stays ungrounded.
    """
    if len(refinements) != len(finding.boxes):
        raise ValueError(f"{len(finding.boxes)} boxes but {len(refinements)} refinements")
    if not finding.boxes:
        return finding.model_copy(update={"status": "ungrounded"})
    decisions = [decide(b, r, policy) for b, r in zip(finding.boxes, refinements)]
    status = max((d.status for d in decisions), key=_RANK.__getitem__)
    notes = [f"box {i + 1}: {d.status} ({d.reason})" for i, d in enumerate(decisions) if d.status != "verified"]
    if finding.note:
        notes.insert(0, finding.note)
    kept = [r.mask for d, r in zip(decisions, refinements) if d.status != "unverified"]
    return finding.model_copy(
        update={
            "boxes": [d.box for d in decisions],
            "mask": _union(kept),
            "refined_box": refinements[0].box,
            "agreement": min(d.agreement for d in decisions),
            "status": status,
            "note": "; ".join(notes) or None,
        }
    )


def verify_findings(
    findings: list[Finding], images: list[LoadedImage], refiner: Refiner, policy: AgreementPolicy
) -> list[Finding]:
    """Refine every box of every finding, one refiner call per image, and decide each finding.

    Boxes are grouped by `image_index` so that a refiner that encodes an image
    (SAM) does so once for all the findings on it.
    """
    by_image: dict[int, list[tuple[int, int]]] = {}
    for fi, finding in enumerate(findings):
        for bi, box in enumerate(finding.boxes):
            if box.image_index >= len(images):
                raise ValueError(f"finding {fi} box {bi} points at image {box.image_index}, but the study has {len(images)}")
            by_image.setdefault(box.image_index, []).append((fi, bi))
    results: dict[tuple[int, int], Refinement] = {}
    for index, slots in by_image.items():
        boxes = [findings[fi].boxes[bi] for fi, bi in slots]
        for slot, ref in zip(slots, refiner.refine(images[index], boxes)):
            results[slot] = ref
    return [
        apply_agreement(f, [results[(fi, bi)] for bi in range(len(f.boxes))], policy) for fi, f in enumerate(findings)
    ]
