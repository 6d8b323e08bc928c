"""fhir: the bundle parses back with fhir.resources (R4B models for R4, R5 models for R5) and its references resolve inside it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest

from evlf.core.errors import InputError

PACKAGES = {"R4": "fhir.resources.R4B", "R5": "fhir.resources"}


def parse(text: str, version: str) -> dict[str, Any]:
    """Validate the bundle and every resource with fhir.resources' own models; return the JSON."""
    package = PACKAGES[version]
    importlib.import_module(f"{package}.bundle").Bundle.model_validate_json(text)
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        model = getattr(importlib.import_module(f"{package}.{kind.lower()}"), kind)
        model.model_validate(entry["resource"])
    return bundle


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("kind", ["ct", "cr", "multiframe"])
def test_bundle_parses_back_and_references_resolve(kind: str, version: str, source, report_on) -> None:
    src = source(kind)
    report = report_on(src, frame=1 if kind == "multiframe" else None, boxless=True)
    bundle = parse(report.export("fhir", subject="Patient/example", settings={"fhir_version": version}), version)
    urls = {e["fullUrl"] for e in bundle["entry"]}
    internal = [r for r in references(bundle) if r.startswith("urn:uuid:")]
    assert internal and set(internal) <= urls
    assert set(references(bundle)) - set(internal) == {"Patient/example"}
    (diagnostic,) = by_type(bundle, "DiagnosticReport")
    assert diagnostic["status"] == "preliminary"
    assert diagnostic["conclusion"].startswith(report.diagnosis.primary)
    assert diagnostic["conclusionCode"][0]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "R91", "display": "pulmonary nodule"}
    observations = by_type(bundle, "Observation")
    assert [o["code"]["text"] for o in observations] == [f.label for f in report.findings]
    assert [o["valueQuantity"]["value"] for o in observations] == [f.confidence for f in report.findings]
    (study,) = by_type(bundle, "ImagingStudy")
    assert study["identifier"][0]["value"] == f"urn:oid:{pydicom.dcmread(src, stop_before_pixels=True).StudyInstanceUID}"
    study_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is study or e["resource"] == study)
    assert all(o["derivedFrom"] == [{"reference": study_url}] for o in observations)
    (device,) = by_type(bundle, "Device")
    assert report.provenance.weights_sha256 in [v["value"] for v in device["version"]]


def test_observations_carry_box_and_verification_status(source, report_on) -> None:
    report = report_on(source("ct"), boxless=True)
    bundle = parse(report.export("fhir", subject="Patient/example"), "R4")
    for obs, finding in zip(by_type(bundle, "Observation"), report.findings):
        parts = {c["code"]["coding"][0]["code"]: c for c in obs["component"]}
        assert parts["verification-status"]["valueCodeableConcept"]["coding"][0]["code"] == finding.status
        box = finding.refined_box or (finding.boxes[0] if finding.boxes else None)
        if box is None:
            assert "bounding-box" not in parts
        else:
            xyxy = parts["bounding-box"]["valueString"].split("xyxy=")[1]
            assert [float(v) for v in xyxy.split(",")] == pytest.approx(box.as_list())


def test_patient_identity_leaves_the_dicom_only_when_allowed(source, report_on) -> None:
    src = source("ct")
    name = str(pydicom.dcmread(src, stop_before_pixels=True).PatientName).replace("^", " ")
    report = report_on(src)
    withheld = report.export("fhir", subject="Patient/example")
    assert name not in withheld and "Patient/example" in withheld
    bundle = parse(report.export("fhir", allow_patient_identity=True), "R4")
    (patient,) = by_type(bundle, "Patient")
    assert patient["name"][0]["text"] == name
    patient_url = bundle["entry"][0]["fullUrl"]
    assert by_type(bundle, "DiagnosticReport")[0]["subject"] == {"reference": patient_url}


def test_dicom_input_without_a_subject_is_refused(source, report_on) -> None:
    with pytest.raises(InputError, match="needs a subject"):
        report_on(source("mr")).export("fhir")


def test_non_dicom_input_has_no_imaging_study(png_source: Path, report_on) -> None:
    bundle = parse(report_on(png_source).export("fhir"), "R4")
    assert by_type(bundle, "ImagingStudy") == [] and "subject" not in by_type(bundle, "DiagnosticReport")[0]
    assert len(by_type(bundle, "Observation")) == 2


def test_unknown_fhir_version_is_refused(png_source: Path, report_on) -> None:
    with pytest.raises(InputError, match="R4 or R5"):
        report_on(png_source).export("fhir", settings={"fhir_version": "STU3"})
