"""Pulmonology: chest radiographs (CR/DX) and chest CT.

Routed by DICOM Modality + BodyPartExamined/description (CHEST, THORAX, LUNG)
or the user's hints; checks that a finding naming a side has its box on that
side of a frontal film (patient's right on the image's left).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence, laterality_consistent
from evlf.core.evidence import study_evidence
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

ICD10 = "ICD-10"


class Pulmonology(Specialty):
    name = "pulmonology"
    title = "Pulmonology (chest radiograph, chest CT)"
    version = "0.1.0"
    modalities = ("CR", "DX", "CT")
    role = "You are a consultant chest radiologist and pulmonologist reading chest radiographs and chest CT."
    guidance = (
        "Read systematically: lines and tubes, airway, lungs and pleura zone by zone, heart size and "
        "mediastinum, diaphragm, bones and soft tissue. On frontal films the patient's right is on the image's "
        "left; name sides from the patient's point of view."
    )
    labels = (
        Label(name="no finding", description="normal chest"),
        Label(name="pneumonia", code="J18.9", system=ICD10),
        Label(name="pneumothorax", code="J93.9", system=ICD10),
        Label(name="pleural effusion", code="J90", system=ICD10),
        Label(name="atelectasis", code="J98.1", system=ICD10),
        Label(name="cardiomegaly", code="I51.7", system=ICD10),
        Label(name="pulmonary oedema", code="J81", system=ICD10),
        Label(name="pulmonary nodule", code="R91", system=ICD10),
        Label(name="lung mass", code="C34.9", system=ICD10, description="suspected malignant neoplasm of lung"),
        Label(name="emphysema", code="J43.9", system=ICD10),
        Label(name="pulmonary fibrosis", code="J84.1", system=ICD10),
        Label(name="pulmonary tuberculosis", code="A16.2", system=ICD10),
        Label(name="COVID-19 pneumonia", code="U07.1", system=ICD10),
        Label(name="pulmonary embolism", code="I26.9", system=ICD10),
        Label(name="rib fracture", code="S22.3", system=ICD10),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured or not ev.has_region("chest"):
            return 0.0
        if ev.has_modality("CR", "DX"):
            return 0.95
        if ev.has_modality("CT"):
            return 0.9
        if not ev.modalities and not any(i.colour for i in ev.images):
            return 0.6  # a grayscale image the user says is of the chest
        return 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + laterality_consistent(report, images, self.name)
        )


SPECIALTY = Pulmonology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
