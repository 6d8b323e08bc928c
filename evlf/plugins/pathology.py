"""Pathology: H&E and IHC patches (brightfield microscopy).

Routed by DICOM slide-microscopy modality/SOP classes (SM), pathology hints,
or image evidence: many small hematoxylin-stained nuclei and no black regions.
Checks boxes and that confident findings are boxed.
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


class Pathology(Specialty):
    name = "pathology"
    title = "Pathology (H&E and IHC patches)"
    version = "0.1.0"
    modalities = ("SM",)
    role = "You are a consultant histopathologist reading H&E and immunohistochemistry (IHC) patches."
    guidance = (
        "Describe the stain, tissue architecture, cellularity, nuclear size, shape and chromatin, mitoses, "
        "necrosis and invasion. For IHC, say which compartment stains (nuclear, membranous, cytoplasmic) and "
        "how strongly and in what proportion of tumour cells."
    )
    labels = (
        Label(name="benign tissue"),
        Label(name="metastatic carcinoma in lymph node", code="C77.9", system=ICD10),
        Label(name="invasive breast carcinoma", code="C50.9", system=ICD10),
        Label(name="colorectal adenocarcinoma", code="C18.9", system=ICD10),
        Label(name="colorectal adenoma", code="D12.6", system=ICD10),
        Label(name="lung adenocarcinoma", code="C34.9", system=ICD10),
        Label(name="lung squamous cell carcinoma", code="C34.9", system=ICD10),
        Label(name="prostate adenocarcinoma", code="C61", system=ICD10),
        Label(name="hepatocellular carcinoma", code="C22.0", system=ICD10),
        Label(name="inflammation", description="inflammatory infiltrate"),
        Label(name="necrosis"),
        Label(name="tumour cells", description="finding: a cluster of neoplastic cells"),
        Label(name="mitotic figure", description="finding"),
        Label(name="IHC positive cells", description="finding: cells stained by the chromogen (e.g. DAB brown)"),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured:
            return 0.0
        if ev.has_modality("SM"):
            return 0.95
        if ev.modalities:
            return 0.0
        stain = min(i.stain for i in ev.images)
        return 0.5 + 0.4 * stain if stain > 0 else 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + labels_known(report, self.label_names(), self.name)
        )


SPECIALTY = Pathology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
