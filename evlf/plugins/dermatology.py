"""Dermatology: dermoscopy and clinical skin photographs.

A colour photograph alone is not enough evidence (a cat is a colour photo):
this specialty accepts a study only when the header or the user says it is
dermoscopy (DICOM modality DMS, Dermoscopic Photography SOP class, or the
hint "dermoscopy") or a clinical photograph of skin (VL Photographic SOP
class / modality XC, or the hint "clinical photo", with skin not contradicted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence, labels_known
from evlf.core.evidence import study_evidence
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

ICD10 = "ICD-10"
ICD10CM = "ICD-10-CM"


class Dermatology(Specialty):
    name = "dermatology"
    title = "Dermatology (dermoscopy, clinical photographs)"
    version = "0.1.0"
    modalities = ("DMS", "XC")
    role = "You are a consultant dermatologist reading dermoscopy images and clinical photographs of skin."
    guidance = (
        "Describe the lesion's asymmetry, border, colours and dermoscopic structures (pigment network, dots "
        "and globules, streaks, blue-white veil, regression, vessels); weigh melanoma-specific criteria "
        "before calling a lesion benign."
    )
    labels = (
        Label(name="melanoma", code="C43.9", system=ICD10),
        Label(name="melanocytic naevus", code="D22.9", system=ICD10),
        Label(name="basal cell carcinoma", code="C44.91", system=ICD10CM),
        Label(name="squamous cell carcinoma", code="C44.92", system=ICD10CM),
        Label(name="actinic keratosis", code="L57.0", system=ICD10),
        Label(name="seborrhoeic keratosis", code="L82", system=ICD10),
        Label(name="dermatofibroma", code="D23.9", system=ICD10),
        Label(name="vascular lesion", code="D18.0", system=ICD10, description="haemangioma, angioma"),
        Label(name="psoriasis", code="L40.9", system=ICD10),
        Label(name="atopic dermatitis", code="L20.9", system=ICD10),
        Label(name="normal skin"),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured or not ev.all_colour:
            return 0.0
        if ev.has_modality("DMS"):
            return 0.95
        if ev.has_modality("XC") and not ev.has_region("eye"):
            return 0.85 if ev.has_region("skin") else 0.7
        if not ev.modalities and ev.has_region("skin"):
            return 0.7  # the user says it shows skin
        return 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + labels_known(report, self.label_names(), self.name)
        )


SPECIALTY = Dermatology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
