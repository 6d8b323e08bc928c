"""Aggregate: reconcile the specialists' drafts into one.

One draft passes through. Several (a panel, or a study routed to more than one
specialty) are reconciled by rule: the diagnosis by confidence-weighted vote,
findings merged when two specialists box the same label on the same place
(IoU >= 0.5, keeping the more confident one), and disagreement reported.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evlf.agents.state import SpecialistDraft, State
from evlf.agents.timing import timed
from evlf.core.geometry import iou
from evlf.core.types import Diagnosis, DifferentialItem, Finding

MERGE_IOU = 0.5


def _same(a: Finding, b: Finding) -> bool:
    if a.label.lower() != b.label.lower():
        return False
    if not a.boxes or not b.boxes:
        return not a.boxes and not b.boxes
    return any(x.image_index == y.image_index and iou(x, y) >= MERGE_IOU for x in a.boxes for y in b.boxes)


def merge_findings(drafts: list[SpecialistDraft]) -> list[Finding]:
    merged: list[Finding] = []
    for draft in drafts:
        for finding in draft.findings:
            match = next((i for i, m in enumerate(merged) if _same(m, finding)), None)
            if match is None:
                merged.append(finding)
                continue
            keep, other = (merged[match], finding) if merged[match].confidence >= finding.confidence else (finding, merged[match])
            note = f"also found by {other.specialty}" if other.specialty and other.specialty != keep.specialty else keep.note
            merged[match] = keep.model_copy(update={"note": "; ".join(filter(None, [keep.note, note])) or None})
    return merged


def vote(drafts: list[SpecialistDraft]) -> Diagnosis | None:
    weights: dict[str, float] = defaultdict(float)
    codes: dict[str, str | None] = {}
    for draft in drafts:
        diag = draft.diagnosis
        if diag is None:
            continue
        weights[diag.primary] += diag.confidence
        codes.setdefault(diag.primary, diag.code)
        for item in diag.differential:
            weights[item.label] += item.probability * diag.confidence
            codes.setdefault(item.label, item.code)
    if not weights:
        return None
    total = sum(weights.values()) or 1.0
    ranked = sorted(weights.items(), key=lambda kv: -kv[1])
    primary, weight = ranked[0]
    return Diagnosis(
        primary=primary,
        code=codes.get(primary),
        confidence=min(1.0, weight / total),
        differential=[DifferentialItem(label=k, code=codes.get(k), probability=min(1.0, v / total)) for k, v in ranked[1:6]],
    )


@timed("aggregate")
def aggregate(state: State) -> dict[str, Any]:
    drafts = sorted(state.get("drafts") or [], key=lambda d: d.specialty)
    if len(drafts) == 1:
        return {"final": drafts[0]}
    usable = [d for d in drafts if d.diagnosis is not None]
    warnings: list[str] = []
    if len({d.diagnosis.primary for d in usable if d.diagnosis}) > 1:
        warnings.append("specialists disagree on the diagnosis: " + ", ".join(f"{d.specialty}: {d.diagnosis.primary}" for d in usable if d.diagnosis))
    base = max(usable, key=lambda d: d.diagnosis.confidence if d.diagnosis else 0.0) if usable else drafts[0]
    final = base.update(
        specialty="+".join(d.specialty for d in drafts),
        findings=merge_findings(drafts),
        diagnosis=vote(usable),
        exemplars=[e for d in drafts for e in d.exemplars],
        think="\n".join(f"[{d.specialty}] {d.think}" for d in drafts if d.think),
        error=None if usable else base.error,
    )
    return {"final": final, "warnings": warnings}
