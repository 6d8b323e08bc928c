"""`evlf eval lesions-test --graph direct --graph full` end to end with the real Pipeline and the tiny backend.

The tiny backend is an untrained model: these tests check the harness runs,
writes and resumes; the metric values say nothing about any model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evlf.cli import app
from evlf.cli.common import run_app

pytest.importorskip("evlf.agents.pipeline")


@pytest.fixture
def small_lesion_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in name resolves through ensure_lesion_set; a small copy keeps the test fast."""
    from evlf.eval import lesions

    real = lesions.ensure_lesion_set
    root = tmp_path / "lesions"
    monkeypatch.setattr(lesions, "ensure_lesion_set", lambda split="test", seed=0: real(split, seed, root=root, n_train=1, n_test=2))


@pytest.mark.slow
def test_eval_direct_vs_full_on_lesions_and_resume(small_lesion_set: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["eval", "lesions-test", "--graph", "direct", "--graph", "full", "--limit", "2", "--concurrency", "2",
            "--bootstrap", "50", "--out", str(out), "--json"]
    assert run_app(app, args) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "lesions-test" and summary["n_cases"] == 2
    assert set(summary["graphs"]) == {"direct", "full"}
    for name, run in summary["graphs"].items():
        assert run["untrained"] is False and run["n_failed"] == 0  # the default backend is the (trained) demo model
        assert run["model_calls_per_case"] >= 1
        assert {"accuracy", "f1_macro", "miou", "acc50"} <= set(run["overall"])
        assert set(run["by_modality"]) <= {"CT", "MR", "CR", "fundus", "pathology"}
        assert len((out / name / "predictions.jsonl").read_text().splitlines()) == 2
    for f in ("summary.md", "summary.csv", "metrics_by_modality.png", "latency.png"):
        assert (out / f).stat().st_size > 0
    first_calls = summary["graphs"]["direct"]["run"]["cache_misses"] + summary["graphs"]["full"]["run"]["cache_misses"]
    assert first_calls >= 1

    # a second run resumes everything: no case re-run, no model call
    assert run_app(app, args) == 0
    again = json.loads(capsys.readouterr().out)
    for run in again["graphs"].values():
        assert run["run"]["ran"] == 0 and run["run"]["resumed"] == 2 and run["run"]["cache_misses"] == 0
    assert again["graphs"]["direct"]["overall"] == summary["graphs"]["direct"]["overall"]


def test_score_reproduces_eval_summary_from_its_own_output(small_lesion_set: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`evlf score` on what `evlf eval` wrote gives eval's numbers, with no extra flags (issue 14)."""
    out = tmp_path / "out"
    args = ["eval", "lesions-test", "--graph", "direct", "--backend", "tiny", "--limit", "2", "--concurrency", "2",
            "--bootstrap", "30", "--seed", "3", "--out", str(out), "--json", "--audit", str(tmp_path / "audit.jsonl")]
    assert run_app(app, args) == 0, capsys.readouterr().err
    from evlf.core.audit import AuditLog

    records = list(AuditLog(tmp_path / "audit.jsonl").records())
    assert len(records) == 2 and {r.entry_point for r in records} == {"eval"} and {r.config.backend for r in records} == {"tiny"}
    run = json.loads(capsys.readouterr().out)["graphs"]["direct"]
    settings = json.loads((out / "direct" / "scoring.json").read_text())
    assert settings["bootstrap"] == 30 and settings["seed"] == 3 and settings["unknown_labels"] == "wrong"

    code = run_app(app, ["score", "--pred", str(out / "direct" / "predictions.jsonl"), "--truth", str(out / "truth.jsonl"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    scored = json.loads(captured.out)
    for key in ("overall", "by_modality", "by_specialty"):
        assert scored[key] == run[key]
