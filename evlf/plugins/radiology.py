"""Radiology: CT, MR, radiographs, ultrasound, mammography and nuclear imaging of everything else.

The general reader: it accepts any study whose header or hint names a
radiological modality, but scores below the organ specialists (chest ->
pulmonology, liver -> hepatology) so those win where they apply. A grayscale
image deeper than 8 bits with no header is weakly accepted (photos are not
16-bit grayscale). Checks sides against the image's recorded laterality.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence, laterality_matches_images
from evlf.core.evidence import study_evidence
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

ICD10 = "ICD-10"
RADIOLOGICAL = ("CT", "MR", "CR", "DX", "US", "MG", "XA", "NM", "PT")


class Radiology(Specialty):
    name = "radiology"
    title = "Radiology (CT, MR, radiographs, ultrasound)"
    version = "0.1.0"
    modalities = RADIOLOGICAL
    role = "You are a consultant radiologist reading CT, MR, radiographs and ultrasound."
    guidance = (
        "Identify the modality, body region, plane and (for CT/MR) the sequence or window first; then review "
        "every structure in view systematically. On axial slices and frontal radiographs the patient's right "
        "is on the image's left."
    )
    labels = (
        Label(name="no acute finding"),
        Label(name="fracture", code="T14.2", system=ICD10),
        Label(name="intracranial haemorrhage", code="I62.9", system=ICD10),
        Label(name="cerebral infarction", code="I63.9", system=ICD10),
        Label(name="brain tumour", code="C71.9", system=ICD10),
        Label(name="meningioma", code="D32.9", system=ICD10),
        Label(name="kidney stone", code="N20.0", system=ICD10),
        Label(name="renal cyst", code="N28.1", system=ICD10),
        Label(name="appendicitis", code="K37", system=ICD10),
        Label(name="bowel obstruction", code="K56.6", system=ICD10),
        Label(name="aortic aneurysm", code="I71.9", system=ICD10),
        Label(name="lymphadenopathy", code="R59.9", system=ICD10),
        Label(name="osteoarthritis of knee", code="M17.9", system=ICD10),
        Label(name="rotator cuff tear", code="M75.1", system=ICD10),
        Label(name="intervertebral disc herniation", code="M51.2", system=ICD10),
        Label(name="breast mass", code="N63", system=ICD10),
        Label(name="mass", description="finding: space-occupying lesion, not otherwise specified"),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured:
            return 0.0
        if ev.has_modality(*RADIOLOGICAL):
            if ev.has_region("chest", "liver"):
                return 0.5  # an organ specialist applies
            if ev.has_region("eye", "skin"):
                return 0.3
            return 0.7
        if not ev.modalities and all(not i.colour and i.bit_depth > 8 for i in ev.images):
            return 0.3
        return 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + laterality_matches_images(report, images, self.name)
        )


SPECIALTY = Radiology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
