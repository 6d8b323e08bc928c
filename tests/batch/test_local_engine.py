"""The local engine end to end with the tiny model: mixed good and bad files, resume after a kill, exporters."""

from __future__ import annotations

import json
import shutil

import pytest

from evlf.batch import BatchOptions, ResultsLog, read_manifest, run_batch
from evlf.core.errors import InputError
from evlf.core.types import Report



class Counting:
    """Wraps the shared Pipeline: counts the studies it is asked to run; can stop like a killed process."""

    def __init__(self, pipeline, kill_after: int | None = None) -> None:
        self.pipeline = pipeline
        self.kill_after = kill_after
        self.ran: list[str] = []

    def run_many(self, studies, concurrency=4, **kwargs):
        if self.kill_after is not None and len(self.ran) >= self.kill_after:
            raise KeyboardInterrupt  # the batch is killed here
        self.ran.extend(s.id for s in studies)
        return self.pipeline.run_many(studies, concurrency=concurrency, **kwargs)

    def run(self, study, **kwargs):
        self.ran.append(study.id)
        return self.pipeline.run(study, **kwargs)


def _options(settings, **kw):
    return BatchOptions(graph="direct", settings=settings, concurrency=2, **kw)


def test_mixed_batch_reports_every_good_study_and_records_every_bad_one(tmp_path, images, pipeline, settings, write_manifest):
    manifest = write_manifest([
        {"id": "ct", "images": [images["ct"]]},
        {"id": "missing", "images": [images["missing"]]},
        {"id": "eye", "images": [images["fundus"]], "question": "Is the optic disc visible?"},
        {"id": "corrupt", "images": [images["corrupt"]]},
        {"id": "mr", "images": [images["mr"]]},
    ])
    out = tmp_path / "out"
    summary = run_batch(read_manifest(manifest), out, _options(settings), pipeline=pipeline)
    assert (summary.total, summary.ok, summary.failed, summary.skipped) == (5, 3, 2, 0)
    rows = {r.id: r for r in ResultsLog(out).rows()}
    assert set(rows) == {"ct", "missing", "eye", "corrupt", "mr"}
    for good in ("ct", "eye", "mr"):
        row = rows[good]
        report = Report.model_validate_json((out / row.reports["json"]).read_text())
        assert row.status == "ok" and report.study_id == good and row.error is None
        assert row.model == report.provenance.model_id and row.findings == len(report.findings)
        assert row.diagnosis == (report.diagnosis.primary if report.diagnosis else None)
        assert row.latency_ms and row.latency_ms > 0
    assert rows["eye"].reports["json"] == "reports/eye.json"
    assert Report.model_validate_json((out / "reports" / "eye.json").read_text()).task == "vqa"
    assert rows["missing"].status == "failed" and str(images["missing"]) in rows["missing"].error
    assert rows["corrupt"].status == "failed" and str(images["corrupt"]) in rows["corrupt"].error
    assert not (out / "reports" / "missing.json").exists() and not (out / "reports" / "corrupt.json").exists()


def test_killed_batch_resumes_without_redoing_a_study(tmp_path, images, pipeline, settings, write_manifest):
    rows = [{"id": f"s{i}", "images": [images["ct" if i % 2 else "fundus"]], "question": f"Question {i}?"} for i in range(6)]
    items = read_manifest(write_manifest(rows))
    out = tmp_path / "out"
    killed = Counting(pipeline, kill_after=4)  # two chunks of two finish, then the process dies
    with pytest.raises(KeyboardInterrupt):
        run_batch(items, out, _options(settings), pipeline=killed)
    done_first = [r.id for r in ResultsLog(out).rows()]
    assert sorted(done_first) == ["s0", "s1", "s2", "s3"]
    again = Counting(pipeline)
    summary = run_batch(items, out, _options(settings), pipeline=again)
    assert sorted(again.ran) == ["s4", "s5"] and summary.skipped == 4 and summary.ok == 2
    third = Counting(pipeline)
    assert run_batch(items, out, _options(settings), pipeline=third).skipped == 6 and third.ran == []
    assert sorted(r.id for r in ResultsLog(out).rows()) == [f"s{i}" for i in range(6)]


def test_resume_is_keyed_by_content_not_path_and_failed_studies_run_again(tmp_path, images, pipeline, settings, write_manifest):
    out = tmp_path / "out"
    items = read_manifest(write_manifest([{"id": "a", "images": [images["ct"]]}, {"id": "b", "images": [images["missing"]]}]))
    run_batch(items, out, _options(settings), pipeline=pipeline)
    moved = tmp_path / "moved" / "other-name.dcm"
    moved.parent.mkdir()
    shutil.copyfile(images["ct"], moved)
    shutil.copyfile(images["mr"], images["missing"])  # the missing file has turned up
    try:
        items = read_manifest(write_manifest([{"id": "a", "images": [moved]}, {"id": "b", "images": [images["missing"]]}], "m2.jsonl"))
        counting = Counting(pipeline)
        summary = run_batch(items, out, _options(settings), pipeline=counting)
    finally:
        images["missing"].unlink()
    assert counting.ran == ["b"] and summary.skipped == 1 and summary.ok == 1
    changed = _options(settings | {"seed": 7})  # another configuration: everything runs again
    counting = Counting(pipeline)
    run_batch(items[:1], out, changed, pipeline=counting)
    assert counting.ran == ["a"]


def test_named_exporters_and_patterns(tmp_path, images, pipeline, settings, write_manifest):
    out = tmp_path / "out"
    items = read_manifest(write_manifest([{"id": "case/1", "images": [images["fundus"]]}]))
    run_batch(items, out, _options(settings, exports=["json", "markdown=md/{id}.md", "html"]), pipeline=pipeline)
    (row,) = ResultsLog(out).rows()
    assert set(row.reports) == {"json", "markdown", "html"}
    assert row.reports["markdown"].startswith("md/case_1-") and row.reports["markdown"].endswith(".md")
    assert "Not for clinical use" in (out / row.reports["html"]).read_text()
    assert json.loads((out / row.reports["json"]).read_text())["study_id"] == "case/1"
    with pytest.raises(InputError, match="unknown exporter 'pdf'"):
        run_batch(items, out, _options(settings, exports=["pdf"]), pipeline=pipeline)
    with pytest.raises(InputError, match="needs"):
        run_batch(items, out, _options(settings, exports=["json=all.json"]), pipeline=pipeline)


def test_a_setting_that_cannot_work_stops_the_batch_instead_of_failing_each_study(tmp_path, images, settings, write_manifest):
    from evlf.core.errors import ConfigError

    items = read_manifest(write_manifest([{"id": "a", "images": [images["ct"]]}, {"id": "b", "images": [images["mr"]]}]))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="unknown backend 'nosuch'"):
        run_batch(items, out, _options(settings | {"backend": "nosuch"}))
    assert ResultsLog(out).rows() == []
    with pytest.raises(ConfigError, match="unknown graph 'nope'"):
        run_batch(items, out, BatchOptions(graph="nope", settings=settings))


def test_batch_audit_trail_records_each_study_and_replays(tmp_path, images, settings, write_manifest):
    from evlf.agents.replay import replay
    from evlf.batch.work import make_pipeline
    from evlf.core.audit import AuditLog

    trail = tmp_path / "audit.jsonl"
    manifest = write_manifest([{"id": "ct", "images": [images["ct"]]}, {"id": "mr", "images": [images["mr"]]}])
    out = tmp_path / "out"
    audited = make_pipeline("direct", settings, audit=str(trail))
    summary = run_batch(read_manifest(manifest), out, _options(settings, audit=str(trail)), pipeline=audited)
    assert summary.ok == 2
    records = list(AuditLog(trail).records())
    assert sorted(r.study["id"] for r in records) == ["ct", "mr"] and {r.entry_point for r in records} == {"batch"}
    assert all(len(r.calls) >= 1 for r in records) and AuditLog(trail).verify() == []
    result = replay(records[0], [images["ct"].parent], from_record=True)
    assert result.identical, result.differences
