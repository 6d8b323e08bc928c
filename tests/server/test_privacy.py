"""No response carries a server path or an uploaded filename; Markdown carries no raw HTML from user text."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file


PATIENT_FILE = "DOE^JANE_1970-01-01.dcm"


def test_reports_carry_neither_server_paths_nor_filenames(live, bodies):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    root = str(live.app.state.upload_root)
    with live.client() as c:
        for fmt in ("json", "html", "markdown"):
            r = c.post("/v1/diagnose", files={"files": (PATIENT_FILE, data, "application/dicom")}, data={"graph": "direct", "specialty": "radiology", "format": fmt})
            assert r.status_code == 200, r.text
            assert "DOE" not in r.text and root not in r.text and str(live.parent) not in r.text
            assert "image-1" not in r.text
    assert r.headers["content-type"].startswith("text/markdown")


def test_errors_name_the_upload_not_the_file_or_folder(live, bodies):
    with live.client() as c:
        r = c.post("/v1/diagnose", files=[("files", ("ok.png", bodies.png(), "image/png")), ("files", ("ROE^RICHARD.png", b"not an image", "image/png"))])
    detail = r.json()["detail"]
    assert r.status_code == 422 and detail.startswith("upload 2: not a recognised image")
    assert "ROE" not in detail and "/" not in detail


def test_markdown_escapes_html_from_the_question(live, bodies):
    question = "<script>alert(1)</script> [x](javascript:alert(2))"
    with live.client() as c:
        r = c.post("/v1/diagnose", files={"files": ("a.png", bodies.png(), "image/png")}, data={"question": question, "format": "markdown", "graph": "direct", "specialty": "radiology"})
    assert r.status_code == 200, r.text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text and "[x](" not in r.text
