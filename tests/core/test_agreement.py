"""Agreement policy: verified, adjusted (refined box replaces the model's) or unverified (kept, flagged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from evlf.core.agreement import AgreementPolicy, apply_agreement, decide, verify_findings
from evlf.core.geometry import iou
from evlf.core.refine import Refinement, Refiner
from evlf.core.specialty import SpecialtyOptions
from evlf.core.types import Box, Finding, LoadedImage, Mask

H, W = 60, 80


def _refinement(model: Box, x0: int, y0: int, x1: int, y1: int) -> Refinement:
    arr = np.zeros((H, W), bool)
    arr[y0:y1, x0:x1] = True
    box = Box(x0=x0, y0=y0, x1=x1, y1=y1) if arr.any() else Box(x0=x0, y0=y0, x1=x0, y1=y0)
    return Refinement(mask=Mask.from_array(arr), box=box, score=0.9, agreement=iou(model, box))


MODEL = Box(x0=10, y0=10, x1=30, y1=30)
POLICY = AgreementPolicy(verify_iou=0.7, adjust_iou=0.3)


def test_close_refinement_verifies_and_keeps_the_model_box() -> None:
    d = decide(MODEL, _refinement(MODEL, 11, 10, 30, 30), POLICY)
    assert d.status == "verified" and d.box == MODEL and d.agreement == pytest.approx(0.95)


def test_moderate_refinement_adjusts_to_the_refined_box() -> None:
    r = _refinement(MODEL, 14, 14, 34, 34)
    d = decide(MODEL, r, POLICY)
    assert d.status == "adjusted" and d.box == r.box and POLICY.adjust_iou <= d.agreement < POLICY.verify_iou


def test_distant_or_empty_refinement_leaves_the_box_unverified() -> None:
    far = decide(MODEL, _refinement(MODEL, 50, 40, 70, 58), POLICY)
    assert far.status == "unverified" and far.box == MODEL
    empty = decide(MODEL, _refinement(MODEL, 20, 20, 20, 20), POLICY)
    assert empty.status == "unverified" and "nothing" in empty.reason


def test_thresholds_come_from_specialty_options_and_must_be_ordered() -> None:
    r = _refinement(MODEL, 14, 14, 34, 34)  # IoU ~0.47
    strict = AgreementPolicy.from_options(SpecialtyOptions(verify_iou=0.9, adjust_iou=0.6))
    lenient = AgreementPolicy.from_options(SpecialtyOptions(verify_iou=0.4, adjust_iou=0.1))
    assert decide(MODEL, r, strict).status == "unverified"
    assert decide(MODEL, r, lenient).status == "verified"
    with pytest.raises(ValidationError, match="must not exceed"):
        AgreementPolicy(verify_iou=0.3, adjust_iou=0.5)


def test_finding_takes_its_weakest_box_and_keeps_every_box() -> None:
    second = Box(x0=40, y0=30, x1=60, y1=50)
    finding = Finding(label="nodule", boxes=[MODEL, second], note="from the model")
    refs = [_refinement(MODEL, 14, 14, 34, 34), _refinement(second, 5, 5, 12, 12)]
    out = apply_agreement(finding, refs, POLICY)
    assert out.status == "unverified" and len(out.boxes) == 2
    assert out.boxes[0] == refs[0].box and out.boxes[1] == second  # adjusted, then kept as drawn
    assert out.agreement == pytest.approx(min(r.agreement for r in refs))
    assert out.mask is not None and out.mask.area == refs[0].mask.area  # the unverified box's mask is left out
    assert out.refined_box == refs[0].box
    assert out.note is not None and out.note.startswith("from the model") and "box 2: unverified" in out.note
    assert finding.status == "ungrounded"  # the input is not modified


def test_all_verified_finding_unions_masks_and_boxless_finding_stays_ungrounded() -> None:
    a, b = MODEL, Box(x0=40, y0=30, x1=60, y1=50)
    refs = [_refinement(a, 10, 10, 30, 30), _refinement(b, 40, 30, 60, 50)]
    out = apply_agreement(Finding(label="cyst", boxes=[a, b]), refs, POLICY)
    assert out.status == "verified" and out.note is None
    assert out.mask is not None and out.mask.area == 400 + 400
    assert apply_agreement(Finding(label="normal"), [], POLICY).status == "ungrounded"
    with pytest.raises(ValueError, match="1 boxes but 0 refinements"):
        apply_agreement(Finding(label="x", boxes=[a]), [], POLICY)


class _CountingRefiner(Refiner):
    """Refines each box to itself shifted by 2 px; records the calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def refine(self, image: LoadedImage, boxes: list[Box]) -> list[Refinement]:
        self.calls.append((image.height, len(boxes)))
        return [_refinement(b, int(b.x0) + 2, int(b.y0), int(b.x1) + 2, int(b.y1)) for b in boxes]


def test_verify_findings_makes_one_refiner_call_per_image() -> None:
    images = [
        LoadedImage(path=Path(f"{i}.png"), format="png", width=W, height=H - i, sha256=str(i),
                    pixels=np.zeros((H - i, W)), rgb=np.zeros((H - i, W, 3), np.uint8))
        for i in range(2)
    ]
    findings = [
        Finding(label="nodule", boxes=[MODEL, Box(x0=40, y0=5, x1=60, y1=20, image_index=1)]),
        Finding(label="mass", boxes=[Box(x0=50, y0=30, x1=70, y1=50)]),
        Finding(label="normal"),
    ]
    refiner = _CountingRefiner()
    out = verify_findings(findings, images, refiner, POLICY)
    assert sorted(refiner.calls) == [(H - 1, 1), (H, 2)]
    assert [f.status for f in out] == ["verified", "verified", "ungrounded"]
    assert out[0].agreement == pytest.approx(18 / 22)
    with pytest.raises(ValueError, match="points at image 3, but the study has 2"):
        verify_findings([Finding(label="x", boxes=[Box(x0=0, y0=0, x1=1, y1=1, image_index=3)])], images, refiner, POLICY)
