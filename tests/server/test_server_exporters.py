"""The server answers with any registered exporter and its media type; an unknown format or an impossible export is a 422."""

from __future__ import annotations

import io

import pytest
from pydicom.data import get_testdata_file

fastapi = pytest.importorskip("fastapi")
import highdicom as hd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from fhir.resources.R4B.bundle import Bundle  # noqa: E402

from evlf.agents.context import Context  # noqa: E402
from evlf.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return TestClient(create_app(Context(backend="tiny", n_exemplars=0, max_new_tokens=128), tmp_path_factory.mktemp("up")))


def post(client, data, name="CT_small.dcm"):
    with open(get_testdata_file(name), "rb") as fh:
        return client.post("/v1/diagnose", files={"files": (name, fh, "application/dicom")}, data={"graph": "direct", **data})


def test_server_lists_exporters(client):
    names = {e["name"]: e["media_type"] for e in client.get("/v1/exporters").json()}
    assert names["fhir"] == "application/fhir+json" and names["dicom-sr"] == "application/dicom" and "html" in names


def test_server_answers_with_the_exporters_media_type(client):
    response = post(client, {"format": "dicom-sr"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    assert hd.sr.srread(io.BytesIO(response.content)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    response = post(client, {"format": "fhir", "subject": "Patient/p1"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    Bundle.model_validate_json(response.text)
    assert post(client, {"format": "html"}).headers["content-type"].startswith("text/html")


def test_server_refuses_unknown_formats_and_impossible_exports(client):
    response = post(client, {"format": "nope"})
    assert response.status_code == 422 and "dicom-sr" in response.json()["detail"]
    response = post(client, {"format": "fhir"})  # DICOM input, no subject, identity not allowed
    assert response.status_code == 422 and "needs a subject" in response.json()["detail"]
    assert "evlf-uploads" not in response.json()["detail"]
