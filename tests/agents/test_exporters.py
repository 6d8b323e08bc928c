"""Report exporters: the HTML page draws boxes and masks where the findings are."""

from __future__ import annotations

import re

import numpy as np

from evlf.core.imaging import load_image
from evlf.core.plugins import get_host
from evlf.core.types import Box, Diagnosis, Finding, Mask, Provenance, ReasoningStep, Report


def sample_report(width: int, height: int) -> Report:
    mask = np.zeros((height, width), bool)
    mask[10:30, 20:50] = True
    finding = Finding(
        label="nodule", confidence=0.8, boxes=[Box(x0=20, y0=10, x1=50, y1=30)], mask=Mask.from_array(mask),
        refined_box=Box(x0=20, y0=10, x1=50, y1=30), agreement=0.9, status="verified",
    )
    return Report(
        study_id="s1", specialties=["radiology"], diagnosis=Diagnosis(primary="nodule", confidence=0.8),
        findings=[finding], reasoning=[ReasoningStep(text="a round nodule", cites=[0])],
        provenance=Provenance(evlf_version="0", model_id="m", backend="tiny", trained=False),
    )


def test_html_draws_each_box_on_the_image(images):
    image = load_image(images["mr"])  # 64 x 64
    report = sample_report(image.width, image.height)
    page = get_host().registries.exporters.get("html").render(report, [image])
    rect = re.search(r'<rect class="box[^"]*" data-f="0" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', page)
    assert rect and [float(v) for v in rect.groups()] == [20.0, 10.0, 30.0, 20.0]
    assert page.count("data:image/png;base64,") == 2  # the image and its mask overlay
    assert 'class="cite" data-f="0"' in page  # the reasoning step links to its finding
    assert "Not for clinical use" in page and "untrained" in page


def test_markdown_and_json(images):
    report = sample_report(64, 64)
    exporters = get_host().registries.exporters
    md = exporters.get("markdown").render(report, [])
    assert "| 1 | nodule | 0.80 | verified | 0.90 |" in md and "[findings 1]" in md
    assert Report.model_validate_json(exporters.get("json").render(report, [])) == report


def test_demo_model_reports_carry_its_banner():
    report = sample_report(64, 64)
    report = report.model_copy(update={"provenance": report.provenance.model_copy(update={"model_id": "evlf-demo-synthetic-lesions-not-for-clinical-use", "trained": True})})
    md = get_host().registries.exporters.get("markdown").render(report, [])
    assert "demo model" in md and "meaningless" in md and "untrained" not in md
