"""Hepatology: liver CT, MRI and ultrasound.

Routed when the body part or description names the liver (strongly) or the
abdomen (weakly: general abdominal imaging goes to radiology first). Checks
that a liver lesion's box sits on the patient's right of an axial slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence
from evlf.core.evidence import normalize_modality, study_evidence
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

ICD10 = "ICD-10"


class Hepatology(Specialty):
    name = "hepatology"
    title = "Hepatology (liver CT, MRI, ultrasound)"
    version = "0.1.0"
    modalities = ("CT", "MR", "US")
    role = "You are a consultant abdominal radiologist with a hepatology focus reading liver CT, MRI and ultrasound."
    guidance = (
        "Assess liver size and contour, parenchymal attenuation or echotexture, focal lesions (number, size, "
        "segment, enhancement pattern), vessels, bile ducts, spleen size and ascites. On axial images the "
        "liver lies on the patient's right, which is the image's left."
    )
    labels = (
        Label(name="normal liver"),
        Label(name="hepatocellular carcinoma", code="C22.0", system=ICD10),
        Label(name="intrahepatic cholangiocarcinoma", code="C22.1", system=ICD10),
        Label(name="liver metastasis", code="C78.7", system=ICD10),
        Label(name="hepatic haemangioma", code="D18.0", system=ICD10),
        Label(name="hepatocellular adenoma", code="D13.4", system=ICD10),
        Label(name="liver cyst", code="K76.8", system=ICD10),
        Label(name="liver abscess", code="K75.0", system=ICD10),
        Label(name="hepatic steatosis", code="K76.0", system=ICD10),
        Label(name="cirrhosis", code="K74.6", system=ICD10),
        Label(name="hepatomegaly", code="R16.0", system=ICD10),
        Label(name="ascites", code="R18", system=ICD10),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        ev = study_evidence(study, images)
        if not ev.all_structured:
            return 0.0
        cross_sectional = ev.has_modality("CT", "MR", "US")
        if ev.has_region("liver") and (cross_sectional or not ev.modalities):
            return 0.95 if cross_sectional else 0.6
        if ev.has_region("abdomen") and cross_sectional:
            return 0.45
        return 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return self.tag(
            boxes_inside_images(report, images, self.name)
            + findings_have_evidence(report, self.name)
            + self.liver_side(report, images)
        )

    def liver_side(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        """A liver finding boxed in the outer quarter of the patient's left on an axial CT/MR is suspicious."""
        issues = []
        for n, finding in enumerate(report.findings):
            if finding.specialty not in (None, self.name) or self.label(finding.label) is None:
                continue
            for box in finding.boxes:
                if box.image_index >= len(images):
                    continue
                img = images[box.image_index]
                if normalize_modality(img.meta.modality) not in ("CT", "MR"):
                    continue
                if (box.x0 + box.x1) / 2 > 0.75 * img.width:
                    issues.append(
                        CheckIssue(
                            check="liver_side",
                            message=f"finding {finding.label!r} is boxed at the far image right (patient's left) "
                            "of an axial slice, where the liver is not; check the box or the orientation",
                            severity="warning",
                            finding=n,
                        )
                    )
        return issues


SPECIALTY = Hepatology()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []
