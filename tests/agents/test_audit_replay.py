"""The audit trail end to end: records from the API and the CLI replay to the same report hash (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evlf.agents.pipeline import Pipeline
from evlf.agents.replay import replay
from evlf.cli import app
from evlf.cli.common import run_app
from evlf.core.audit import AuditLog, report_fingerprint
from evlf.core.hashing import sha256_file
from evlf.core.types import Study


@pytest.fixture
def audited(scripted, images, tmp_path: Path):
    log = tmp_path / "audit.jsonl"
    pipeline = Pipeline("direct", backend=scripted(), audit=log)
    report = pipeline.run(Study.from_paths([images["ct"]]))
    return AuditLog(log), report


def test_api_record_holds_inputs_config_calls_and_report_hash(audited, images) -> None:
    log, report = audited
    record = log.get(report.provenance.audit_id)
    assert record.entry_point == "api" and record.config.graph == "direct" and record.config.backend == "scripted"
    assert record.inputs[0].sha256 == sha256_file(images["ct"]) and record.inputs[0].path is None
    assert len(record.calls) == report.provenance.model_calls == 1
    assert record.calls[0].request["system"] and record.calls[0].generation.text
    assert record.report_sha256 == report_fingerprint(report)
    text = log.path.read_text()
    assert images["ct"].name not in text and str(images["ct"].parent) not in text  # no paths unless asked for


def test_api_record_replays_identically_live_and_from_record(audited, scripted, images) -> None:
    log, report = audited
    record = log.get(report.provenance.audit_id)
    live = replay(record, [images["ct"].parent], backend=scripted())
    assert live.identical, live.differences
    offline = replay(record, [images["ct"]], from_record=True)
    assert offline.identical, offline.differences


def test_changed_prompt_template_differs_at_the_reason_node(audited, images, monkeypatch: pytest.MonkeyPatch) -> None:
    from evlf.core import prompts

    log, report = audited
    original = prompts.system_prompt
    monkeypatch.setattr(prompts, "system_prompt", lambda *a, **k: original(*a, **k) + "\nBe brief.")
    result = replay(log.get(report.provenance.audit_id), [images["ct"]], from_record=True)
    assert not result.identical
    assert "reason node" in result.differences[0] and "system" in result.differences[0]


def test_missing_input_file_is_a_clear_error(audited, images, tmp_path: Path) -> None:
    from evlf.core.errors import InputError

    log, report = audited
    with pytest.raises(InputError, match="--image PATH"):
        replay(log.get(report.provenance.audit_id), [images["mr"]], from_record=True)


@pytest.mark.slow
def test_cli_record_replays_and_an_edited_record_fails_verify(images, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "audit.jsonl"
    code = run_app(app, ["diagnose", str(images["ct"]), "--graph", "direct", "--backend", "tiny", "--audit", str(log), "--json"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    rid = report["provenance"]["audit_id"]
    assert run_app(app, ["audit", "list", "--audit", str(log), "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [rid]
    for extra in ([], ["--from-record"]):
        assert run_app(app, ["replay", rid, "--audit", str(log), "--images", str(images["ct"].parent), *extra]) == 0, capsys.readouterr().out
        assert "identical" in capsys.readouterr().out
    assert run_app(app, ["audit", "verify", "--audit", str(log)]) == 0
    record = json.loads(log.read_text())
    record["report"]["diagnosis"] = {"primary": "edited", "confidence": 1.0}
    log.write_text(json.dumps(record) + "\n")
    assert run_app(app, ["audit", "verify", "--audit", str(log)]) == 1
    assert "changed after it was written" in capsys.readouterr().err
