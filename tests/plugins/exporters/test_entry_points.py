"""The exporters as an extension point: `evlf exporters list`, `evlf diagnose --export NAME=PATH`, the server's format, the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import pytest
from fhir.resources.R4B.bundle import Bundle
from pydicom.data import get_testdata_file

from evlf.core.errors import ConfigError
from evlf.core.types import Report

CLINICAL = {"dicom-sr": "application/dicom", "dicom-seg": "application/dicom", "fhir": "application/fhir+json"}


def evlf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evlf", *args], capture_output=True, text=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_exporters_list_names_every_registered_exporter() -> None:
    out = evlf("exporters", "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {"json", "markdown", "html"} <= rows.keys()
    assert {name: rows[name]["media_type"] for name in CLINICAL} == CLINICAL
    assert rows["fhir"]["plugin"].endswith("exporters.fhir")


@pytest.mark.parametrize(("spec", "message"), [("nope=x.out", "unknown exporter 'nope'"), ("fhir", "expected NAME=PATH")])
def test_diagnose_refuses_a_bad_export_before_running(spec: str, message: str, tmp_path: Path) -> None:
    out = evlf("diagnose", get_testdata_file("CT_small.dcm"), "--backend", "tiny", "--export", spec)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert "done ingest" not in out.stderr


def test_diagnose_writes_every_export_target(tmp_path: Path) -> None:
    sr, bundle, report = tmp_path / "sr.dcm", tmp_path / "bundle.json", tmp_path / "report.json"
    from typer.testing import CliRunner

    from evlf.cli import app

    args = ["diagnose", get_testdata_file("CT_small.dcm"), "--backend", "tiny", "--graph", "direct", "-k", "0"]
    args += ["--out", str(report), "--export", f"dicom-sr={sr}", "--export", f"fhir={bundle}", "--subject", "Patient/p1"]
    out = CliRunner().invoke(app, args)  # in-process: the tiny model is built once per test session
    assert out.exit_code == 0, out.output
    written = Report.model_validate_json(report.read_text())
    assert len(hd.sr.srread(sr).content.get_planar_roi_measurement_groups()) == sum(1 for f in written.findings if f.refined_box or f.boxes)
    parsed = Bundle.model_validate_json(bundle.read_text())
    assert sum(e.resource.get_resource_type() == "Observation" for e in parsed.entry) == len(written.findings)
    assert f"wrote dicom-sr: {sr}" in out.stdout


def test_unknown_exporter_in_the_python_api_names_the_known_ones(report_on, source) -> None:
    with pytest.raises(ConfigError, match="dicom-seg"):
        report_on(source("ct")).export("nope")


def test_python_api_writes_the_file_it_returns(report_on, source, tmp_path: Path) -> None:
    content = report_on(source("mr")).export("dicom-sr", tmp_path / "sr.dcm")
    assert isinstance(content, bytes) and (tmp_path / "sr.dcm").read_bytes() == content
    html = report_on(source("mr")).export("html")
    assert isinstance(html, str) and "<html" in html.lower()


def test_cli_targets_write_the_seg_first_and_the_sr_references_it(report_on, source, tmp_path: Path) -> None:
    from evlf.cli.exporters import parse_targets, write_targets
    from evlf.core.exporter import ExportOptions

    sr, seg = tmp_path / "sr.dcm", tmp_path / "seg.dcm"
    targets = parse_targets([f"dicom-sr={sr}", f"dicom-seg={seg}"], {"json": tmp_path / "r.json", "markdown": None})
    assert [name for name, _ in targets] == ["json", "dicom-sr", "dicom-seg"]
    write_targets(report_on(source("ct")), targets, ExportOptions())
    groups = hd.sr.srread(sr).content.get_planar_roi_measurement_groups()
    assert {g.referenced_segmentation_frame.referenced_sop_instance_uid for g in groups} == {hd.seg.segread(seg).SOPInstanceUID}


def test_a_misspelt_export_option_is_an_error(report_on, source) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="allow_patient_identiy"):
        report_on(source("ct")).export("fhir", allow_patient_identiy=True)
