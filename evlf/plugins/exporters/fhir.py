"""`fhir`: the report as a FHIR transaction Bundle (R4 by default, R5 with settings {"fhir_version": "R5"}).

A preliminary DiagnosticReport (an AI result awaits a human) with the diagnosis
as conclusion and coded conclusion; one Observation per finding (code,
confidence as value, boxes and verification status as components) derived
from the ImagingStudy (DICOM input); a Device for the model. Entries refer to
each other by urn:uuid full URLs, so a FHIR server resolves them on POST.
Patient identity leaves the DICOM only with `allow_patient_identity`; otherwise
the subject is the caller's reference, or absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from evlf.core.errors import ConfigError, InputError
from evlf.core.exporter import Exporter, ExportOptions
from evlf.core.hookspecs import hookimpl
from evlf.core.types import Finding, Report
from evlf.plugins.exporters.dicom_common import clean, code_system, final_boxes
from evlf.plugins.exporters.fhir_dicom import imaging_study, patient, read_dicom_headers

NAME = "fhir"
EVLF_SYSTEM = "https://evlf.dev/fhir/CodeSystem/evlf"
SYSTEMS = {"SNOMED CT": "http://snomed.info/sct", "SNOMED": "http://snomed.info/sct", "ICD-10": "http://hl7.org/fhir/sid/icd-10"}
UCUM = "http://unitsofmeasure.org"
VERSIONS = {"R4": "fhir.resources.R4B.bundle", "R5": "fhir.resources.bundle"}


def export_fhir(report: Report, options: ExportOptions) -> str:
    version = options.settings.get("fhir_version", "R4").upper()
    if version not in VERSIONS:
        raise InputError("fhir_version", f"must be R4 or R5, not {version!r}")
    bundle_class = bundle_model(version)
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> str:
        url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
        return url

    subject = subject_reference(report, options, add)
    device = add(device_resource(report, version))
    headers = read_dicom_headers(report, options)
    study = add(imaging_study(headers, subject, version)) if headers else None
    if headers and subject is None:
        raise InputError(NAME, "an ImagingStudy needs a subject: pass subject='Patient/ID' (CLI --subject) or allow patient identity")
    observations = [add(observation(report, f, n, subject, device, study)) for n, f in enumerate(report.findings)]
    add(diagnostic_report(report, subject, observations, study, version))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return bundle_class.model_validate(bundle).model_dump_json(indent=2, exclude_none=True)


def bundle_model(version: str) -> Any:
    import importlib

    try:
        return importlib.import_module(VERSIONS[version]).Bundle
    except ImportError:
        raise ConfigError("fhir needs fhir.resources: pip install 'evlf[fhir]'") from None


def subject_reference(report: Report, options: ExportOptions, add: Callable[[dict[str, Any]], str]) -> str | None:
    """The caller's subject reference, or (only when allowed) a Patient made from the DICOM header."""
    if options.subject:
        return options.subject
    if options.allow_patient_identity:
        headers = read_dicom_headers(report, options)
        if headers:
            return add(patient(headers[0]))
    return None


def coding(code: str | None, label: str, system: str | None) -> dict[str, Any]:
    """A CodeableConcept in the label's standard system where known, else in evlf's own system."""
    label = clean(label)
    if code and system and system.upper() in SYSTEMS:
        return {"coding": [{"system": SYSTEMS[system.upper()], "code": code, "display": label}], "text": label}
    return {"coding": [{"system": EVLF_SYSTEM, "code": code or label, "display": label}], "text": label}


def evlf_code(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": EVLF_SYSTEM, "code": code, "display": display}], "text": display}


def device_resource(report: Report, version: str) -> dict[str, Any]:
    p = report.provenance
    versions = [{"type": evlf_code("weights-sha256", "SHA-256 of the model weights"), "value": p.weights_sha256 or "unknown"}, {"type": evlf_code("evlf", "evlf version"), "value": p.evlf_version}]
    names = [{"name": p.model_id, "type": "model-name"}] if version == "R4" else [{"value": p.model_id, "type": "model-name"}]
    key = "deviceName" if version == "R4" else "name"
    return {"resourceType": "Device", "manufacturer": "evlf", key: names, "version": versions, "note": [{"text": "AI model; research software, not for clinical use"}]}


def observation(report: Report, f: Finding, n: int, subject: str | None, device: str, study: str | None) -> dict[str, Any]:

    components = [{"code": evlf_code("verification-status", "Verification status of the box"), "valueCodeableConcept": evlf_code(f.status, f.status)}]
    for box in final_boxes(f):
        frame = report.images[box.image_index].frame_index if box.image_index < len(report.images) else 0
        text = f"image={box.image_index} frame={frame} xyxy={box.x0:g},{box.y0:g},{box.x1:g},{box.y1:g}"
        components.append({"code": evlf_code("bounding-box", "Bounding box in original-image pixels"), "valueString": text})
    if f.agreement is not None:
        components.append({"code": evlf_code("agreement", "Agreement of box and refined mask"), "valueQuantity": {"value": round(f.agreement, 4), "unit": "1", "system": UCUM, "code": "1"}})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "preliminary",
        "code": coding(f.code, f.label, code_system(f.specialty, f.label, f.code)),
        "valueQuantity": {"value": round(f.confidence, 4), "unit": "1", "system": UCUM, "code": "1"},
        "device": {"reference": device},
        "component": components,
        "note": [{"text": f"finding {n + 1} of the evlf report {report.study_id}"}],
    }
    if subject:
        resource["subject"] = {"reference": subject}
    if study:
        resource["derivedFrom"] = [{"reference": study}]
    return resource


def diagnostic_report(report: Report, subject: str | None, observations: list[str], study: str | None, version: str) -> dict[str, Any]:
    d = report.diagnosis
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}], "text": "evlf AI report"},
        "issued": report.provenance.created_at.isoformat(),
        "result": [{"reference": o} for o in observations],
    }
    if d:
        resource["conclusion"] = f"{clean(d.primary)} (confidence {d.confidence:.2f}; AI result, not verified by a clinician)"
        resource["conclusionCode"] = [coding(d.code, d.primary, code_system(report.specialties[0] if report.specialties else None, d.primary, d.code))]
    if subject:
        resource["subject"] = {"reference": subject}
    if study:
        resource["imagingStudy" if version == "R4" else "study"] = [{"reference": study}]
    return resource


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    register(Exporter(name=NAME, suffix=".json", media_type="application/fhir+json", export=export_fhir, description="FHIR R4 transaction Bundle: DiagnosticReport, Observations, ImagingStudy, Device (R5 with fhir_version=R5)"))
