"""The HTTP API: a real upload gets a schema-valid Report; bad input a 422 with one line."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file

from evlf.core.types import Report

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from evlf.agents.context import Context  # noqa: E402
from evlf.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return TestClient(create_app(Context(backend="tiny", n_exemplars=0, max_new_tokens=128), tmp_path_factory.mktemp("up")))


def test_health_schema_and_catalogue(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/v1/schema/report").json()["title"] == "Report"
    assert {"direct", "full"} <= {g["name"] for g in client.get("/v1/graphs").json()}
    assert "pulmonology" in {s["name"] for s in client.get("/v1/specialties").json()}


def test_diagnose_upload_returns_report(client):
    with open(get_testdata_file("CT_small.dcm"), "rb") as fh:
        response = client.post("/v1/diagnose", files={"files": ("ct.dcm", fh, "application/dicom")}, data={"graph": "direct", "specialty": "radiology"})
    assert response.status_code == 200, response.text
    report = Report.model_validate(response.json())
    assert report.specialties == ["radiology"] and report.provenance.trained is False


def test_bad_upload_is_422_with_a_clear_message(client):
    response = client.post("/v1/diagnose", files={"files": ("x.png", b"not an image", "image/png")}, data={"graph": "direct", "specialty": "radiology"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("upload 1: not a recognised image") and "x.png" not in response.json()["detail"]
    response = client.post("/v1/diagnose", files={"files": ("x.png", b"x", "image/png")}, data={"graph": "nope"})
    assert response.status_code == 422


def test_server_reports_are_audited_by_default_and_replay(tmp_path_factory):
    """Issue 18: the server keeps an audit trail unless told not to; its record replays to the same report."""
    from pathlib import Path

    from evlf.agents.replay import replay
    from evlf.core.audit import AuditLog
    from evlf.server import ServerSettings

    trail = tmp_path_factory.mktemp("trail") / "audit.jsonl"
    app = create_app(Context(backend="tiny", n_exemplars=0, max_new_tokens=64), settings=ServerSettings(audit=trail))
    source = Path(get_testdata_file("CT_small.dcm"))
    with TestClient(app) as client, source.open("rb") as fh:
        response = client.post("/v1/diagnose", files={"files": ("DOE^JANE.dcm", fh, "application/dicom")}, data={"graph": "direct"})
    assert response.status_code == 200, response.text
    rid = response.json()["provenance"]["audit_id"]
    record = AuditLog(trail).get(rid)
    assert record.entry_point == "server" and "DOE" not in trail.read_text()
    result = replay(record, [source])
    assert result.identical, result.differences
    off = create_app(Context(backend="tiny", n_exemplars=0, max_new_tokens=64), settings=ServerSettings(audit_enabled=False))
    with TestClient(off) as client, source.open("rb") as fh:
        assert client.post("/v1/diagnose", files={"files": ("a.dcm", fh, "application/dicom")}, data={"graph": "direct"}).json()["provenance"]["audit_id"] is None
