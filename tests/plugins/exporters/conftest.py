"""Reports built directly on real DICOM test files, so the clinical exporters are tested without any model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from evlf.core.imaging import load_image
from evlf.core.types import Box, Diagnosis, DifferentialItem, Finding, ImageSummary, Mask, Provenance, ReasoningStep, Report

#: The real DICOM files of the issue: CT, MR, the chest radiograph (pydicom-data) and a multi-frame enhanced MR.
SOURCES = {"ct": "CT_small.dcm", "mr": "MR_small.dcm", "cr": "RG1_UNCR.dcm", "multiframe": "eCT_Supplemental.dcm", "cine": "examples_ybr_color.dcm"}


def source_path(kind: str) -> Path:
    found = get_testdata_file(SOURCES[kind])
    if found is None:
        pytest.skip(f"{SOURCES[kind]} is not installed (pydicom-data)")
    return Path(found)


def make_report(path: Path, frame: int | None = None, boxless: bool = False) -> Report:
    """A report of three findings on `path`: a refined one with a mask, an adjusted box, and one without a box (when asked)."""
    image = load_image(path, frame)
    w, h = image.width, image.height
    box = Box(x0=w * 0.2, y0=h * 0.25, x1=w * 0.55, y1=h * 0.6)
    mask = np.zeros((h, w), dtype=bool)
    mask[int(h * 0.3) : int(h * 0.55), int(w * 0.25) : int(w * 0.5)] = True
    refined = Box(x0=w * 0.25, y0=h * 0.3, x1=w * 0.5, y1=h * 0.55)
    findings = [
        Finding(label="pulmonary nodule", code="R91", specialty="pulmonology", confidence=0.81, boxes=[box], mask=Mask.from_array(mask), refined_box=refined, agreement=0.74, status="verified"),
        Finding(label="pleural effusion", code="J90", specialty="pulmonology", confidence=0.42, boxes=[Box(x0=w * 0.6, y0=h * 0.1, x1=w * 0.9, y1=h * 0.4)], status="adjusted", agreement=0.4),
    ]
    if boxless:
        findings.append(Finding(label="cardiomegaly", confidence=0.3, status="ungrounded"))
    summary = ImageSummary(path=str(path), sha256=image.sha256, width=w, height=h, frames=image.frames, frame_index=image.frame_index, modality=image.meta.modality)
    return Report(
        study_id="study-test",
        specialties=["pulmonology"],
        images=[summary],
        diagnosis=Diagnosis(primary="pulmonary nodule", code="R91", confidence=0.81, differential=[DifferentialItem(label="pleural effusion", probability=0.2)]),
        findings=findings,
        reasoning=[ReasoningStep(text="A round opacity in the right upper zone.", cites=[0]), ReasoningStep(text="Blunted costophrenic angle.", cites=[1])],
        provenance=Provenance(evlf_version="0.1.0", model_id="evlf-test-model", model_family="qwen2_5_vl", weights_sha256="ab" * 32, backend="tiny", graph="full", graph_version="1"),
    )


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines dciodvfy (Debian's dicom3tools) prints for a file; skips the test when the tool is absent."""
    import shutil
    import subprocess

    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools; .ci/run installs it)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture
def png_source(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray((np.arange(64 * 48) % 251).reshape(48, 64).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def report_on():  # type: ignore[no-untyped-def]
    """make_report(path, frame=None, boxless=False): a three-finding report on a real file."""
    return make_report


@pytest.fixture
def source():  # type: ignore[no-untyped-def]
    """source_path(kind): the real DICOM file of that kind (ct, mr, cr, multiframe, cine)."""
    return source_path


@pytest.fixture
def dciodvfy():  # type: ignore[no-untyped-def]
    return dciodvfy_errors
