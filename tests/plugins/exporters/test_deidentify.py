"""`deidentify=True` (CLI --deidentify): the SR and SEG carry no patient identity but still reference the source (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("highdicom")


@pytest.mark.parametrize("name", ["dicom-sr", "dicom-seg"])
def test_deidentified_output_keeps_references_and_drops_identity(name: str, tmp_path: Path, source, report_on, dciodvfy) -> None:
    src = source("ct")
    original = pydicom.dcmread(src, stop_before_pixels=True)
    assert str(original.PatientName)  # the source does identify a patient
    plain, clean = tmp_path / "plain.dcm", tmp_path / "clean.dcm"
    report = report_on(src)
    report.export(name, plain)
    report.export(name, clean, deidentify=True)
    kept = pydicom.dcmread(plain)
    ds = pydicom.dcmread(clean)
    assert str(kept.PatientName) == str(original.PatientName)
    assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientIdentityRemoved == "YES"
    assert "PatientBirthDate" not in ds or ds.PatientBirthDate == ""
    assert ds.StudyInstanceUID == original.StudyInstanceUID  # Retain UIDs: a viewer still matches it to the images
    text = clean.read_bytes()
    for value in (str(original.PatientName), str(original.get("PatientID", "")) or "\x00"):
        if len(value) > 3:
            assert value.encode() not in text
    assert dciodvfy(clean) == []
