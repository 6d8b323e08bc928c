"""`evlf info`, `evlf schema report`, `evlf --version`: output shapes and exit codes."""

import json
import subprocess
import sys

from pydicom.data import get_testdata_file

from evlf import __version__


def evlf(*args):
    return subprocess.run([sys.executable, "-m", "evlf", *args], capture_output=True, text=True)


def test_version():
    out = evlf("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"evlf {__version__}"


def test_info_json_on_real_files():
    files = [get_testdata_file(n) for n in ("CT_small.dcm", "RG1_UNCR.dcm", "emri_small.dcm")]
    out = evlf("info", "--json", *files)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["modality"] for r in rows] == ["CT", "CR", "MR"]
    assert rows[1]["body_part"] == "CHEST" and rows[1]["photometric"] == "MONOCHROME1"
    assert rows[2]["frames"] == 10
    for r in rows:
        assert {"path", "format", "width", "height", "frames", "modality", "body_part", "photometric"} <= r.keys()


def test_info_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "scan.dcm"
    bad.write_text("definitely not dicom")
    good = get_testdata_file("MR_small.dcm")
    out = evlf("info", "--json", str(bad), good)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0]
    assert [r["modality"] for r in json.loads(out.stdout)] == ["MR"]  # the good file is still reported


def test_schema_report_prints_versioned_schema():
    out = evlf("schema", "report")
    schema = json.loads(out.stdout)
    assert out.returncode == 0 and schema["title"] == "Report" and schema["version"]
