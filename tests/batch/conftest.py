"""Fixtures for batch tests: real bundled images, a manifest writer, and one tiny-model Pipeline per session."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

GRAPH = "direct"


@pytest.fixture(scope="session", autouse=True)
def _no_case_store(tmp_path_factory) -> None:
    """Retrieval finds no store (set for the session, so Ray workers started later inherit it)."""
    os.environ["EVLF_CASE_STORE"] = str(tmp_path_factory.mktemp("store") / "none")


@pytest.fixture(scope="session")
def settings() -> dict[str, Any]:
    from evlf.agents.context import Context

    return Context(backend="tiny", n_exemplars=0, max_new_tokens=96).model_dump(mode="json")


@pytest.fixture(scope="session")
def pipeline(settings):
    """The one Pipeline the local-engine tests share (the tiny model loads once)."""
    from evlf.batch.work import make_pipeline

    return make_pipeline(GRAPH, settings)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """Small real images from the packages that ship them, and two bad files."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("images")
    out = {"ct": root / "CT_small.dcm", "mr": root / "MR_small.dcm"}
    for key, path in out.items():
        shutil.copyfile(get_testdata_file(path.name), path)
    out["fundus"] = root / "fundus.png"
    Image.fromarray(data.retina()[::8, ::8]).save(out["fundus"])
    out["corrupt"] = root / "corrupt.png"
    out["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    out["missing"] = root / "missing.dcm"
    return out


@pytest.fixture
def write_manifest(tmp_path):
    """Write a JSONL manifest of (id, image keys) pairs; returns its path."""

    def write(rows: list[dict[str, Any]], name: str = "manifest.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
        return path

    return write


def _report_files(out: Path) -> dict[str, dict[str, Any]]:
    reports = {}
    for path in sorted((out / "reports").glob("*.json")):
        data = json.loads(path.read_text())
        data["provenance"].pop("timings_ms", None)
        data["provenance"].pop("created_at", None)
        reports[path.name] = data
    return reports


@pytest.fixture
def report_files():
    """Every JSON report under out/reports, by file name, less the fields that differ run to run (timings)."""
    return _report_files
