"""`evlf diagnose` takes the hints its routing refusal asks for (--modality, --body-part) and routing reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from evlf.cli import app
from evlf.cli.common import run_app


@pytest.fixture
def plain_radiograph(tmp_path: Path) -> Path:
    """A CT slice saved as a grayscale PNG: no header says what it is."""
    pixels = dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(float)
    scaled = ((pixels - pixels.min()) / (np.ptp(pixels) or 1) * 255).astype(np.uint8)
    path = tmp_path / "plain.png"
    Image.fromarray(scaled).save(path)
    return path


def diagnose(capsys, path: Path, *hints: str) -> tuple[int, str, str]:
    code = run_app(app, ["diagnose", str(path), "--backend", "tiny", "--graph", "direct", "-k", "0", "--json", *hints])
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def test_body_part_and_modality_hints_route_a_headerless_image(plain_radiograph, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("EVLF_CASE_STORE", str(tmp_path / "no-store"))
    code, _, err = diagnose(capsys, plain_radiograph)
    assert code == 2 and "--body-part" in err and "--modality" in err
    code, out, _ = diagnose(capsys, plain_radiograph, "--body-part", "liver")
    assert code == 0 and json.loads(out)["specialties"] == ["hepatology"]
    code, out, _ = diagnose(capsys, plain_radiograph, "--modality", "x-ray", "--body-part", "chest")
    assert code == 0 and json.loads(out)["specialties"] == ["pulmonology"]
