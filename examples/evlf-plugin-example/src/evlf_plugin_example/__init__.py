"""Example evlf plugin: a dentistry specialty for dental panoramic (PX) and intra-oral (IO) radiographs.

Routing reads the DICOM modality (PX, IO) and the user's hints
(`Study.metadata["modality"]` such as "dental", "panoramic", "OPG"); the check
flags findings that name a tooth number outside the FDI notation; the
`dental-chart` exporter writes a report as a plain-text tooth chart.
Written from docs/plugins.md alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from evlf.core.checks import boxes_inside_images, findings_have_evidence
from evlf.core.exporter import Exporter
from evlf.core.hookspecs import hookimpl
from evlf.core.specialty import Label, Specialty
from evlf.core.types import CheckIssue, LoadedImage, Report, Study

__version__ = "0.1.0"

DENTAL_MODALITIES = {"PX", "IO"}
DENTAL_HINTS = {"px", "io", "dental", "panoramic", "opg", "orthopantomogram", "intraoral", "intra-oral", "bitewing"}
FDI_TOOTH = re.compile(r"\btooth (\d{2})\b")


class Dentistry(Specialty):
    name = "dentistry"
    title = "Dentistry (panoramic and intra-oral radiographs)"
    version = __version__
    modalities = ("PX", "IO")
    role = "You are a dental radiologist reading panoramic and intra-oral radiographs."
    guidance = "Name teeth in FDI notation (two digits, e.g. tooth 36). Check every tooth, the periapical regions and the bone level."
    labels = (
        Label(name="no finding"),
        Label(name="dental caries", code="K02.9", system="ICD-10"),
        Label(name="periapical abscess", code="K04.7", system="ICD-10"),
        Label(name="impacted tooth", code="K01.1", system="ICD-10"),
        Label(name="periodontitis", code="K05.3", system="ICD-10"),
        Label(name="missing tooth", code="K08.1", system="ICD-10"),
    )

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        modalities = {(img.meta.modality or "").upper() for img in images}
        if modalities & DENTAL_MODALITIES:
            return 0.95
        hint = str(study.metadata.get("modality", "")).strip().lower()
        return 0.9 if hint in DENTAL_HINTS else 0.0

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        issues = boxes_inside_images(report, images, self.name) + findings_have_evidence(report, self.name)
        for n, finding in enumerate(report.findings):
            for number in FDI_TOOTH.findall(f"{finding.label} {finding.note or ''}"):
                quadrant, tooth = int(number[0]), int(number[1])
                if not (1 <= quadrant <= 8 and 1 <= tooth <= (8 if quadrant <= 4 else 5)):
                    issues.append(
                        CheckIssue(
                            check="fdi_tooth_number",
                            message=f"finding {finding.label!r} names tooth {number}, which is not an FDI tooth number",
                            severity="error",
                            finding=n,
                        )
                    )
        return self.tag(issues)


SPECIALTY = Dentistry()


@hookimpl
def register_specialties(register: Callable[[Any], None]) -> None:
    register(SPECIALTY)


@hookimpl
def report_checks(report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
    return SPECIALTY.checks(report, images) if SPECIALTY.name in report.specialties else []


def dental_chart(report: Report, images: list[Any]) -> str:
    """The report as a short plain-text chart: diagnosis, then one line per finding with its teeth."""
    primary = report.diagnosis.primary if report.diagnosis else "no diagnosis"
    lines = [f"DENTAL CHART  study {report.study_id}", f"diagnosis: {primary}", "Not for clinical use."]
    for n, finding in enumerate(report.findings, start=1):
        teeth = ", ".join(FDI_TOOTH.findall(f"{finding.label} {finding.note or ''}")) or "-"
        lines.append(f"{n}. {finding.label} [{finding.status}] teeth: {teeth}")
    return "\n".join(lines) + "\n"


CHART = Exporter(name="dental-chart", suffix=".txt", media_type="text/plain", render=dental_chart)


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    register(CHART)
