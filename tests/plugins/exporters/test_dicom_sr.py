"""dicom-sr on real DICOM files: read back with highdicom and pydicom, every finding, box and code intact; dciodvfy clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from evlf.core.errors import InputError
from evlf.plugins.exporters.dicom_common import final_boxes

FRAMES = {"multiframe": 1, "cine": 4}
KINDS = ["ct", "mr", "cr", "multiframe", "cine"]


def write_sr(kind: str, tmp_path: Path, source, report_on) -> tuple[Path, object, pydicom.Dataset]:
    src = source(kind)
    report = report_on(src, frame=FRAMES.get(kind), boxless=True)
    out = tmp_path / f"{kind}-sr.dcm"
    report.export("dicom-sr", out)
    return out, report, pydicom.dcmread(src, stop_before_pixels=True)


@pytest.mark.parametrize("kind", KINDS)
def test_sr_reads_back_with_every_finding_box_and_code(kind: str, tmp_path: Path, source, report_on) -> None:
    out, report, original = write_sr(kind, tmp_path, source, report_on)
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert ds.StudyInstanceUID == original.StudyInstanceUID
    sr = hd.sr.srread(out)
    groups = sr.content.get_planar_roi_measurement_groups()
    boxed = [f for f in report.findings if final_boxes(f)]
    assert len(groups) == len(boxed) == 2
    for group, finding in zip(groups, boxed):
        assert (group.finding_type.value, group.finding_type.scheme_designator) == (finding.code, "I10")
        assert group.finding_type.meaning == finding.label
        box = final_boxes(finding)[0]
        corners = group.roi.value
        assert corners[0] == pytest.approx([box.x0, box.y0], abs=1e-3)
        assert corners[2] == pytest.approx([box.x1, box.y1], abs=1e-3)
        ref = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
        assert ref.ReferencedSOPInstanceUID == original.SOPInstanceUID
        expected_frames = [FRAMES[kind] + 1] if kind in FRAMES else None
        frames = ref.get("ReferencedFrameNumber")
        assert (None if frames is None else [int(f) for f in (frames if isinstance(frames, list | pydicom.multival.MultiValue) else [frames])]) == expected_frames
        (evaluation,) = group.get_qualitative_evaluations()
        assert evaluation.value.value == finding.status.upper()
        (measurement,) = group.get_measurements()
        assert measurement.value == pytest.approx(finding.confidence)
        assert finding.label in group.tracking_identifier


@pytest.mark.parametrize("kind", ["ct", "multiframe"])
def test_sr_names_the_model_and_keeps_boxless_findings_and_text(kind: str, tmp_path: Path, source, report_on) -> None:
    out, report, _ = write_sr(kind, tmp_path, source, report_on)
    sr = hd.sr.srread(out)
    (observer,) = sr.content.get_observer_contexts(observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"))
    attrs = {item.name.value: str(item.value) for item in observer if hasattr(item, "value")}
    assert report.provenance.model_id in attrs.values()
    assert report.provenance.weights_sha256 in attrs.values()
    (plain,) = sr.content.get_image_measurement_groups()
    assert plain.finding_type.meaning == "cardiomegaly"
    texts = [item.TextValue for item in sr.ContentSequence[-1].ContentSequence]
    assert texts[0].startswith("pulmonary nodule")
    assert texts[1:] == [f"{n}. {s.text}" for n, s in enumerate(report.reasoning, start=1)]
    assert pydicom.dcmread(out).CompletionFlag == "PARTIAL" and pydicom.dcmread(out).VerificationFlag == "UNVERIFIED"


@pytest.mark.parametrize("kind", KINDS)
def test_sr_passes_dciodvfy(kind: str, tmp_path: Path, source, report_on, dciodvfy) -> None:
    out, _, _ = write_sr(kind, tmp_path, source, report_on)
    assert dciodvfy(out) == []


def test_sr_refuses_a_non_dicom_source(png_source: Path, tmp_path: Path, report_on) -> None:
    with pytest.raises(InputError, match="needs DICOM input"):
        report_on(png_source).export("dicom-sr", tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_sr_refuses_a_source_changed_since_the_run(tmp_path: Path, source, report_on) -> None:
    src = tmp_path / "ct.dcm"
    shutil.copy(source("ct"), src)
    report = report_on(src)
    ds = pydicom.dcmread(src)
    ds.SeriesDescription = "edited"
    ds.save_as(src)
    with pytest.raises(InputError, match="changed since the run"):
        report.export("dicom-sr", tmp_path / "sr.dcm")


def test_sr_takes_the_sources_from_the_options(tmp_path: Path, source, report_on) -> None:
    """A report whose recorded paths moved (e.g. a server's uploads) exports against the caller's copies."""
    moved = tmp_path / "moved.dcm"
    shutil.copy(source("mr"), moved)
    report = report_on(moved).model_copy(update={"images": [i.model_copy(update={"path": "/gone/x.dcm"}) for i in report_on(moved).images]})
    with pytest.raises(InputError, match="missing"):
        report.export("dicom-sr")
    assert isinstance(report.export("dicom-sr", sources=[moved]), bytes)


def test_sr_of_a_report_without_findings_says_so_and_validates(tmp_path: Path, source, report_on, dciodvfy) -> None:
    report = report_on(source("cr"))
    report = report.model_copy(update={"findings": [], "reasoning": []})
    out = tmp_path / "sr.dcm"
    report.export("dicom-sr", out)
    (group,) = hd.sr.srread(out).content.get_image_measurement_groups()
    assert group.finding_type.value == "NO-FINDINGS"
    assert dciodvfy(out) == []


def test_model_text_is_made_safe_for_dicom_and_fhir(tmp_path: Path, source, report_on, dciodvfy) -> None:
    """An untrained model's text (control characters, backslashes, empty names, non-ASCII) still gives valid files."""
    from fhir.resources.R4B.bundle import Bundle

    report = report_on(source("ct"))
    odd = "  ma\\ss\x00 \n naïve  "
    findings = [f.model_copy(update={"label": odd, "code": None}) for f in report.findings]
    diagnosis = report.diagnosis.model_copy(update={"primary": " \n ", "code": None})
    report = report.model_copy(update={"findings": findings, "diagnosis": diagnosis})
    for name in ("dicom-sr", "dicom-seg"):
        report.export(name, tmp_path / f"{name}.dcm")
        assert dciodvfy(tmp_path / f"{name}.dcm") == []
    (group, _) = hd.sr.srread(tmp_path / "dicom-sr.dcm").content.get_planar_roi_measurement_groups()
    assert group.finding_type.meaning == "ma/ss naïve"
    Bundle.model_validate_json(report.export("fhir", subject="Patient/p1"))
