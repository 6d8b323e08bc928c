"""Ophthalmology: colour fundus photographs and OCT.

Routed by DICOM ophthalmic modalities/SOP classes (OP, OPT), eye hints, or
image evidence: a bright reddish disc on a black surround. Checks that a
finding naming an eye (right/left, OD/OS) matches the image's laterality.
"""

from __future__ import annotations

import re

from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence, laterality_matches_images, side_named
from evlf.core.evidence import study_evidence
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

ICD10 = "ICD-10"


class Ophthalmology(Specialty):
    name = "ophthalmology"
    title = "Ophthalmology (fundus photography, OCT)"
    version = "0.1.0"
    modalities = ("OP", "OPT")
    role = "You are a consultant ophthalmologist and retina specialist reading colour fundus photographs and OCT."
    guidance = (
        "Assess the optic disc (cup-to-disc ratio, margins), the macula and fovea, the vessels (calibre, "
        "crossings, occlusions) and the periphery; look for microaneurysms, haemorrhages, exudates, "
        "cotton-wool spots, drusen and neovascularisation. Name the eye as right (OD) or left (OS) only when "
        "the image says which."
    )
    labels = (
        Label(name="normal fundus"),
        Label(name="diabetic retinopathy", code="H36.0", system=ICD10),
        Label(name="glaucoma", code="H40.9", system=ICD10),
        Label(name="age-related macular degeneration", code="H35.3", system=ICD10),
        Label(name="drusen", code="H35.3", system=ICD10, description="degeneration of macula and posterior pole"),
        Label(name="hypertensive retinopathy", code="H35.0", system=ICD10),
        Label(name="retinal vein occlusion", code="H34.8", system=ICD10),
        Label(name="retinal artery occlusion", code="H34.1", system=ICD10),
        Label(name="retinal detachment", code="H33.2", system=ICD10),
        Label(name="pathological myopia", code="H44.2", system=ICD10),
        Label(name="papilloedema", code="H47.1", system=ICD10),
        Label(name="cataract", code="H26.9", system=ICD10),
        Label(name="microaneurysm", description="finding: small red dot in diabetic retinopathy"),
        Label(name="hard exudate", description="finding: yellow lipid deposit"),
        Label(name="retinal haemorrhage", code="H35.6", system=ICD10),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured:
            return 0.0
        if ev.has_modality("OP", "OPT"):
            return 0.95
        if ev.has_region("eye") and ev.modalities <= {"XC"}:
            return 0.8  # an eye photograph, or an image the user says shows the eye
        if ev.modalities:
            return 0.0  # the header or the user named another modality
        fundus = min(i.fundus for i in ev.images)
        return 0.5 + 0.4 * fundus if fundus > 0 else 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + laterality_matches_images(report, images, self.name)
            + self.answer_eye(report, images)
        )

    def answer_eye(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        """The diagnosis or VQA answer must not name the other eye than the one imaged."""
        recorded = {(img.meta.laterality or "").upper()[:1] for img in images} - {""}
        if len(recorded) != 1:
            return []
        eye = recorded.pop()
        texts = [report.answer, report.diagnosis.primary if report.diagnosis else None]
        for text in texts:
            side = _eye_named(text)
            if side and side != eye:
                return [
                    CheckIssue(
                        check="laterality",
                        message=f"the report names the {'right' if side == 'R' else 'left'} eye but the image is of the "
                        f"{'right' if eye == 'R' else 'left'} eye",
                        severity="error",
                    )
                ]
        return []


def _eye_named(text: str | None) -> str | None:
    """'R'/'L' when the text names one eye ("right eye", "OS"), else None."""
    if not text:
        return None
    words = set(re.findall(r"[a-z]+", text.lower()))
    if "eye" not in words and not words & {"od", "os"}:
        return None
    return side_named(text)


SPECIALTY = Ophthalmology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
