"""`evlf replay`: re-run a study from its audit record and say whether the report came out the same.

Two modes. Live: the recorded configuration with the real model; with greedy
decoding on the same weights and hardware the report hash matches. From the
record: the graph runs again but every model call is answered from the
record (PlaybackBackend), so a difference is in evlf's own code or prompts,
never in the model. Either way the result names the first place that differs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from evlf.core.audit import AuditRecord, PlaybackBackend, RecordingBackend, report_fingerprint
from evlf.core.audit.calls import CallDifference, request_differences
from evlf.core.audit.record import CallRecord, fingerprint_view
from evlf.core.backends.base import Backend, ModelIdentity
from evlf.core.errors import InputError
from evlf.core.hashing import sha256_file
from evlf.core.types import Report, Study


class ReplayResult(BaseModel):
    record_id: str
    mode: str  # "live" or "from-record"
    identical: bool
    recorded_sha256: str
    replayed_sha256: str
    differences: list[str] = Field(default_factory=list)  # plain sentences, first difference first
    report: Report | None = None


def locate_inputs(record: AuditRecord, images: list[Path]) -> list[Path]:
    """The recorded input files, found by hash among `images` (and at the recorded paths, when paths were kept)."""
    by_hash: dict[str, Path] = {}
    for path in images:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in candidates:
            by_hash.setdefault(sha256_file(p), p)
    found = []
    for item in record.inputs:
        if item.sha256 not in by_hash and item.path and Path(item.path).is_file() and sha256_file(Path(item.path)) == item.sha256:
            by_hash[item.sha256] = Path(item.path)
        if item.sha256 not in by_hash:
            raise InputError(None, f"input {item.index} of record {record.id} (sha256 {item.sha256[:12]}...) was not found: pass the original file with --image PATH or a folder with --images DIR")
        found.append(by_hash[item.sha256])
    return found


def recorded_study(record: AuditRecord, paths: list[Path]) -> Study:
    data = dict(record.study)
    data["images"] = [{**ref, "path": str(p)} for ref, p in zip(data["images"], paths, strict=True)]
    return Study.model_validate(data)


def call_differences(old: list[CallRecord], new: list[CallRecord]) -> list[str]:
    """Sentences naming where a live replay's model calls part from the recorded ones."""
    out = []
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        fields = request_differences(a.request, b.request)
        if fields:
            out.append(f"model call {i + 1} ({a.request_id}) at the {a.node} node: the request differs in {', '.join(fields)} (a change in evlf's prompts or inputs)")
            break
        if a.generation.text != b.generation.text:
            out.append(f"model call {i + 1} ({a.request_id}) at the {a.node} node: same request, different answer (the model, its weights, its settings or the hardware changed)")
            break
    if len(old) != len(new):
        out.append(f"the record holds {len(old)} model calls, the replay made {len(new)}")
    return out


def playback_differences(diffs: list[CallDifference]) -> list[str]:
    return [
        f"model call {d.call + 1} ({d.request_id}) at the {d.node} node: the request differs in {', '.join(d.fields)} (a change in evlf's prompts or code)"
        for d in diffs
    ]


def report_differences(recorded: dict, replayed: Report) -> list[str]:
    new = fingerprint_view(replayed)
    old = dict(recorded)
    old.get("provenance", {}).pop("timings_ms", None)
    old.get("provenance", {}).pop("created_at", None)
    old.get("provenance", {}).pop("audit_id", None)
    for image in old.get("images", []):
        image.pop("path", None)
    return [f"report field {key!r} differs" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def replay(record: AuditRecord, images: list[Path], *, from_record: bool = False, backend: Backend | None = None) -> ReplayResult:
    """Re-run `record`'s study with its recorded configuration; see the module docstring for the two modes."""
    from evlf.agents.pipeline import Pipeline

    study = recorded_study(record, locate_inputs(record, images))
    context = dict(record.config.context)
    playback: PlaybackBackend | None = None
    if from_record:
        playback = PlaybackBackend(record.calls, ModelIdentity.model_validate(record.config.model), record.config.backend)
        chosen: Backend | None = playback
    else:
        chosen = backend
    recorder = RecordingBackend(chosen) if chosen is not None else None
    pipeline = Pipeline(record.config.graph, context, backend=recorder)
    pipeline.auditor = None  # a replay checks the record; it does not add to the trail
    res = pipeline.resources()
    if recorder is None:  # the recorded backend by name: record its calls too
        recorder = RecordingBackend(res.get_backend())
        res.backend = recorder
    import asyncio

    report = asyncio.run(pipeline.arun(study, res=res, fresh=True))
    new_calls = recorder.take(study.id)
    replayed = report_fingerprint(report)
    if playback is not None:  # from the record: any request that changed is a difference, even if the answer hid it
        differences = playback_differences(playback.differences)
        if playback.unused():
            differences.append(f"the replay left {playback.unused()} recorded model calls unasked")
    else:
        differences = call_differences(record.calls, new_calls) if replayed != record.report_sha256 else []
    if replayed != record.report_sha256:
        differences += report_differences(record.report, report) or ["the report differs after the model calls (ground, refine, verify or report)"]
    identical = replayed == record.report_sha256 and not differences
    return ReplayResult(
        record_id=record.id,
        mode="from-record" if from_record else "live",
        identical=identical,
        recorded_sha256=record.report_sha256,
        replayed_sha256=replayed,
        differences=differences,
        report=report,
    )
