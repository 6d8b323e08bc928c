"""What the DICOM SR and SEG exporters share: checked source datasets, codes for findings, the algorithm's identity.

A derived DICOM object must point at the exact instances the model saw, so the
sources are re-read and their SHA-256 compared with the report's before
anything is written: a changed, missing or non-DICOM source is an InputError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evlf.core.errors import ConfigError, InputError
from evlf.core.exporter import ExportOptions
from evlf.core.hashing import sha256_file
from evlf.core.types import Box, Finding, Report

#: Private coding scheme for what no standard code names (DICOM PS3.16 8.2: private schemes start with "99").
EVLF_SCHEME = "99EVLF"
#: DICOM coding scheme designators for the systems specialty labels use.
SCHEMES = {"SNOMED CT": "SCT", "SNOMED": "SCT", "SCT": "SCT", "ICD-10": "I10", "ICD10": "I10", "I10": "I10"}
#: Imaging procedure (SNOMED CT) per DICOM modality, for TID 1500's "procedure reported".
PROCEDURES = {
    "CT": ("77477000", "Computerized axial tomography"),
    "MR": ("113091000", "Magnetic resonance imaging"),
    "CR": ("363680008", "Radiographic imaging procedure"),
    "DX": ("363680008", "Radiographic imaging procedure"),
    "US": ("16310003", "Ultrasonography"),
}
IMAGING = ("363679005", "Imaging")


@dataclass
class Source:
    """One report image with its DICOM dataset, checked against the report."""

    index: int
    dataset: Any
    frames: int
    frame_index: int

    @property
    def frame_number(self) -> int | None:
        """The 1-based DICOM frame number for multi-frame sources, else None."""
        return self.frame_index + 1 if self.frames > 1 else None


def require_highdicom(exporter: str) -> Any:
    try:
        import highdicom
    except ImportError:
        raise ConfigError(f"{exporter} needs highdicom: pip install 'evlf[dicom-sr]'") from None
    return highdicom


def load_sources(report: Report, options: ExportOptions, exporter: str) -> list[Source]:
    """The report's source DICOM datasets, each checked to be DICOM and unchanged since the run."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not report.images:
        raise InputError(exporter, "the report names no source images")
    sources = []
    for n, (summary, path) in enumerate(zip(report.images, options.source_paths(report))):
        path = Path(path)
        if not path.is_file():
            raise InputError(path, f"{exporter}: source image {n} is missing")
        if summary.sha256 and sha256_file(path) != summary.sha256:
            raise InputError(path, f"{exporter}: source image {n} changed since the run (SHA-256 differs); run the study again")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            raise InputError(path, f"{exporter} needs DICOM input: a DICOM object must reference the source instance, and this file is not DICOM") from None
        if "SOPInstanceUID" not in ds or "StudyInstanceUID" not in ds or "Rows" not in ds:
            raise InputError(path, f"{exporter}: the DICOM file lacks SOPInstanceUID, StudyInstanceUID or Rows")
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if summary.frame_index >= frames:
            raise InputError(path, f"{exporter}: the report names frame {summary.frame_index} but the file has {frames}")
        sources.append(Source(n, ds, frames, summary.frame_index))
    studies = {str(s.dataset.StudyInstanceUID) for s in sources}
    if len(studies) > 1:
        raise InputError(exporter, "the source images belong to different studies; one DICOM object can only describe one study")
    return sources


def clean(text: str | None, fallback: str = "unnamed") -> str:
    """Model text made safe for DICOM and FHIR strings: no control characters or backslashes, single spaces."""
    kept = "".join(c if c.isprintable() else " " for c in (text or "")).replace("\\", "/")
    return " ".join(kept.split()) or fallback


def coded(value: str, scheme: str, meaning: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value, scheme_designator=scheme, meaning=clean(meaning)[:64].strip())


def private_code(text: str) -> str:
    """A private code value (SH, 16 characters) derived from a label."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").upper()
    return (slug or "FINDING")[:16]


def code_system(specialty: str | None, label: str, code: str | None) -> str | None:
    """The coding system of a specialty's label with this code, looked up in the registry."""
    from evlf.core.plugins import get_host

    specialties = get_host().registries.specialties
    if not code or not specialty or specialty not in specialties:
        return None
    known = specialties.get(specialty).label(label)
    return known.system if known and known.code == code else None


def finding_type(finding: Finding) -> Any:
    """The finding's code: its label's SNOMED CT (or ICD-10) code where it has one, else a private evlf code."""
    system = code_system(finding.specialty, finding.label, finding.code)
    if finding.code and system:
        scheme = SCHEMES.get(system.upper())
        if scheme:
            return coded(finding.code, scheme, finding.label)
    return coded(private_code(finding.label), EVLF_SCHEME, finding.label)


def procedure(sources: list[Source]) -> Any:
    modality = str(sources[0].dataset.get("Modality", "")).upper()
    value, meaning = PROCEDURES.get(modality, IMAGING)
    return coded(value, "SCT", meaning)


def final_boxes(finding: Finding) -> list[Box]:
    """The boxes a finding is drawn with: the refined box when the refiner ran, else the model's boxes."""
    return [finding.refined_box] if finding.refined_box is not None else list(finding.boxes)


def device_uid(report: Report) -> str:
    """A UID that stays the same for the same model weights."""
    from pydicom.uid import generate_uid

    p = report.provenance
    return str(generate_uid(entropy_srcs=[p.model_id, p.weights_sha256 or "", p.evlf_version]))


def algorithm(report: Report) -> Any:
    """TID 4019 algorithm identification: the model, its weights' hash as version, the evlf graph as parameters."""
    from highdicom import AlgorithmIdentificationSequence
    from highdicom.sr import CodedConcept

    p = report.provenance
    family = CodedConcept(value="123110", scheme_designator="DCM", meaning="Artificial Intelligence")
    version = (p.weights_sha256 or f"evlf {p.evlf_version}")[:64]
    params = {"graph": f"{p.graph or '-'} {p.graph_version or ''}".strip(), "evlf": p.evlf_version}
    return AlgorithmIdentificationSequence(name=p.model_id[:64], family=family, version=version, parameters=params)


def series_kwargs(description: str) -> dict[str, Any]:
    """The instance attributes both objects share: new UIDs, evlf as manufacturer, the model as device."""
    from highdicom import UID

    return {
        "series_instance_uid": UID(),
        "series_number": 9000,
        "sop_instance_uid": UID(),
        "instance_number": 1,
        "manufacturer": "evlf",
        "series_description": description,
    }


def tracking_uid(report: Report, n: int, finding: Finding) -> str:
    """The UID that tracks finding n across the SR and the SEG of one report."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[report.study_id, report.provenance.created_at.isoformat(), str(n), finding.label]))


def tracking_id(n: int, finding: Finding) -> str:
    return f"finding {n + 1}: {clean(finding.label)}"[:64].strip()


def to_bytes(dataset: Any) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: model text and source names may hold any character
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
