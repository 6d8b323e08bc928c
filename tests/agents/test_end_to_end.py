"""All four graphs end to end on real images with the real (tiny, untrained) model, from the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evlf.agents.pipeline import Pipeline
from evlf.core.types import Report, Study


@pytest.mark.parametrize("graph", ["direct", "rag", "full", "panel"])
def test_graph_runs_end_to_end_with_the_tiny_model(graph, images):
    study = Study.from_paths([images["chest"]], id=f"e2e-{graph}")
    report = Pipeline(graph, backend="tiny", n_exemplars=1).run(study)
    Report.model_validate_json(report.model_dump_json())  # schema-valid
    assert report.provenance.backend == "tiny" and report.provenance.trained is False
    assert report.provenance.model_calls >= 1 and report.provenance.graph == graph
    assert "pulmonology" in report.specialties
    assert report.diagnosis is not None  # constrained decoding: even the untrained model answers in schema


def test_routing_of_real_images(images):
    pipe = Pipeline("direct", backend="tiny")
    expected = {"fundus": "ophthalmology", "ihc": "pathology", "ct": "radiology"}
    studies = [Study.from_paths([images[k]], id=k) for k in expected]
    reports = pipe.run_many(studies, concurrency=3)
    assert {r.study_id: r.specialties[0] for r in reports} == expected


def test_cli_diagnose_writes_json_html_and_markdown(images, tmp_path):
    out, html, md = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "evlf", "diagnose", str(images["fundus"]), "--backend", "tiny", "--graph", "full",
         "--out", str(out), "--html", str(html), "--md", str(md), "--json"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    printed = Report.model_validate(json.loads(proc.stdout))
    stored = Report.model_validate_json(out.read_text())
    assert printed.study_id == stored.study_id and stored.specialties == ["ophthalmology"]
    page = html.read_text()
    assert "Not for clinical use" in page and "untrained" in page and "data:image/png;base64," in page
    assert "untrained" in md.read_text()


def test_cli_bad_input_and_unknown_graph(images, tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "evlf", "diagnose", str(bad), "--backend", "tiny"], capture_output=True, text=True)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "evlf", "diagnose", str(images["ct"]), "--graph", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown graph 'nope'" in proc.stderr


def test_graphs_list_and_show():
    proc = subprocess.run([sys.executable, "-m", "evlf", "graphs", "list", "--json"], capture_output=True, text=True)
    names = {g["name"] for g in json.loads(proc.stdout)}
    assert {"direct", "rag", "full", "panel"} <= names
    proc = subprocess.run([sys.executable, "-m", "evlf", "graphs", "show", "full"], capture_output=True, text=True)
    assert proc.returncode == 0 and "graph TD" in proc.stdout and "verify" in proc.stdout
