"""The DICOM side of the FHIR bundle: the ImagingStudy, and a Patient only when the user allows identity to leave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evlf.core.errors import InputError
from evlf.core.exporter import ExportOptions
from evlf.core.hashing import sha256_file
from evlf.core.types import Report

DCM = "http://dicom.nema.org/resources/ontology/DCM"
GENDERS = {"M": "male", "F": "female", "O": "other"}


def read_dicom_headers(report: Report, options: ExportOptions) -> list[Any]:
    """Headers of the report's DICOM sources (none for other inputs), each checked unchanged since the run."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = []
    for n, (summary, path) in enumerate(zip(report.images, options.source_paths(report))):
        path = Path(path)
        if not path.is_file():
            raise InputError(path, f"fhir: source image {n} is missing")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        if summary.sha256 and sha256_file(path) != summary.sha256:
            raise InputError(path, f"fhir: source image {n} changed since the run (SHA-256 differs); run the study again")
        if "StudyInstanceUID" in ds and "SOPInstanceUID" in ds:
            headers.append(ds)
    return headers


def imaging_study(headers: list[Any], subject: str | None, version: str) -> dict[str, Any]:
    """An ImagingStudy naming the study, series and instances the report was made from (UIDs only)."""
    series: dict[str, dict[str, Any]] = {}
    for ds in headers:
        uid = str(ds.get("SeriesInstanceUID", ""))
        modality = {"system": DCM, "code": str(ds.get("Modality", "OT") or "OT")}
        entry = series.setdefault(uid, {"uid": uid, "modality": modality if version == "R4" else {"coding": [modality]}, "instance": []})
        instance = {"uid": str(ds.SOPInstanceUID), "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{ds.SOPClassUID}"}}
        entry["instance"].append(instance)
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{headers[0].StudyInstanceUID}"}],
        "numberOfSeries": len(series),
        "numberOfInstances": len(headers),
        "series": list(series.values()),
    }
    if subject:
        resource["subject"] = {"reference": subject}
    return resource


def patient(ds: Any) -> dict[str, Any]:
    """A Patient from the DICOM patient module; called only with the user's permission."""
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if ds.get("PatientID"):
        resource["identifier"] = [{"value": str(ds.PatientID)}]
    if ds.get("PatientName"):
        resource["name"] = [{"text": str(ds.PatientName).replace("^", " ").strip()}]
    birth = str(ds.get("PatientBirthDate", "") or "")
    if len(birth) == 8 and birth.isdigit():
        resource["birthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    sex = str(ds.get("PatientSex", "") or "").upper()
    if sex in GENDERS:
        resource["gender"] = GENDERS[sex]
    return resource
