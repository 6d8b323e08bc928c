"""Reusable report checks that specialties combine in `Specialty.checks`.

Each returns `CheckIssue`s; errors send a draft back to reasoning, warnings are
reported. Laterality is read the radiological way: on a frontal radiograph or
an axial slice the patient's right is on the image's left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from evlf.core.geometry import inside
from evlf.core.types import CheckIssue, Finding, LoadedImage, Report

_SIDE_WORDS = {"right": "R", "left": "L", "od": "R", "os": "L"}


def _findings(report: Report, specialty: str | None) -> Iterable[tuple[int, Finding]]:
    for n, finding in enumerate(report.findings):
        if specialty is None or finding.specialty in (None, specialty):
            yield n, finding


def boxes_inside_images(report: Report, images: list[LoadedImage], specialty: str | None = None) -> list[CheckIssue]:
    """Every box must name an existing image and lie inside it."""
    issues = []
    for n, finding in _findings(report, specialty):
        for box in [*finding.boxes, *([finding.refined_box] if finding.refined_box else [])]:
            if box.image_index >= len(images):
                issues.append(
                    CheckIssue(
                        check="box_inside_image",
                        message=f"finding {finding.label!r} has a box on image {box.image_index}, "
                        f"but the study has {len(images)} image(s)",
                        severity="error",
                        finding=n,
                    )
                )
                continue
            img = images[box.image_index]
            if not inside(box, (img.width, img.height)):
                issues.append(
                    CheckIssue(
                        check="box_inside_image",
                        message=f"finding {finding.label!r} box {[round(v, 1) for v in box.as_list()]} lies outside "
                        f"the {img.width}x{img.height} image",
                        severity="error",
                        finding=n,
                    )
                )
            elif box.area <= 0:
                issues.append(
                    CheckIssue(check="box_inside_image", message=f"finding {finding.label!r} has an empty box", finding=n)
                )
    return issues


def findings_have_evidence(report: Report, specialty: str | None = None, min_confidence: float = 0.5) -> list[CheckIssue]:
    """A confident finding must point at pixels; in grounding every finding must have a box."""
    issues = []
    for n, finding in _findings(report, specialty):
        if finding.boxes or finding.refined_box:
            continue
        if report.task == "grounding" or finding.confidence >= min_confidence:
            issues.append(
                CheckIssue(
                    check="finding_without_evidence",
                    message=f"finding {finding.label!r} (confidence {finding.confidence:.2f}) has no box to support it",
                    severity="error" if report.task == "grounding" else "warning",
                    finding=n,
                )
            )
    return issues


def labels_known(report: Report, known: Iterable[str], specialty: str | None = None) -> list[CheckIssue]:
    """Findings and the diagnosis should use the specialty's label set (warning: free text is allowed)."""
    names = {k.lower() for k in known}
    if not names:
        return []
    issues = []
    for n, finding in _findings(report, specialty):
        if finding.label.lower() not in names:
            issues.append(
                CheckIssue(check="label_in_label_set", message=f"finding label {finding.label!r} is not in the label set", finding=n)
            )
    return issues


def side_named(text: str | None) -> str | None:
    """'R' or 'L' when the text names exactly one side (right/left, OD/OS), else None."""
    if not text:
        return None
    words = set(re.findall(r"[a-z]+", text.lower()))
    sides = {side for word, side in _SIDE_WORDS.items() if word in words}
    return sides.pop() if len(sides) == 1 else None


def image_side(box_center_x: float, width: int) -> str:
    """The patient's side a point is on in radiological convention (image left = patient right)."""
    return "R" if box_center_x < width / 2 else "L"


def laterality_consistent(
    report: Report,
    images: list[LoadedImage],
    specialty: str | None = None,
    margin: float = 0.1,
) -> list[CheckIssue]:
    """A finding that names a side must have its box on that side of a frontal/axial image.

    Boxes within `margin` (fraction of width) of the midline are not judged.
    """
    issues = []
    for n, finding in _findings(report, specialty):
        side = side_named(finding.label) or side_named(finding.note)
        if side is None:
            continue
        for box in finding.boxes:
            if box.image_index >= len(images):
                continue
            img = images[box.image_index]
            view = (img.meta.view or "").upper()
            if view in ("LAT", "LL", "RL", "LATERAL"):
                continue
            cx = (box.x0 + box.x1) / 2
            if abs(cx - img.width / 2) < margin * img.width:
                continue
            seen = image_side(cx, img.width)
            if seen != side:
                word = {"R": "right", "L": "left"}
                issues.append(
                    CheckIssue(
                        check="laterality",
                        message=f"finding {finding.label!r} names the {word[side]} side but its box is on the "
                        f"patient's {word[seen]} (image {'left' if seen == 'R' else 'right'}) half",
                        severity="error",
                        finding=n,
                    )
                )
    return issues


def laterality_matches_images(report: Report, images: list[LoadedImage], specialty: str | None = None) -> list[CheckIssue]:
    """A finding naming a side (right/left, OD/OS) must agree with its image's recorded laterality.

    For paired organs (eyes, limbs, breasts) the DICOM laterality says which
    one was imaged; a finding on the other side is a wrong-side error.
    """
    issues = []
    word = {"R": "right", "L": "left"}
    for n, finding in _findings(report, specialty):
        side = side_named(finding.label) or side_named(finding.note)
        if side is None:
            continue
        indices = {b.image_index for b in finding.boxes} or set(range(len(images)))
        for idx in sorted(indices):
            if idx >= len(images):
                continue
            recorded = (images[idx].meta.laterality or "").strip().upper()[:1]
            if recorded in ("R", "L") and recorded != side:
                issues.append(
                    CheckIssue(
                        check="laterality",
                        message=f"finding {finding.label!r} names the {word[side]} side but image {idx} "
                        f"is recorded as {word[recorded]}",
                        severity="error",
                        finding=n,
                    )
                )
    return issues
