"""Run a batch: key every study, skip those already done, hand the rest to an engine, record each outcome.

The driver alone writes DIR (reports and results.jsonl), whichever engine
runs the studies, so a Ray cluster's workers need no shared file system for
the output. A study whose images cannot be read is recorded as failed before
any model runs; failed studies are tried again on the next run, done ones
never are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout
from pydantic import BaseModel

from evlf.agents import defaults

from evlf.batch.keys import config_key, study_key
from evlf.batch.manifest import BatchItem
from evlf.batch.outputs import ExportSpec, parse_exports, write_reports
from evlf.batch.results import ResultRow, ResultsLog
from evlf.batch.work import Job, Outcome, describe
from evlf.core.errors import InputError

Engine = Literal["local", "ray"]


class BatchSummary(BaseModel):
    total: int
    skipped: int = 0  # done by an earlier run
    ok: int = 0
    failed: int = 0
    wall_s: float = 0.0


class BatchOptions(BaseModel):
    """How to run: the graph and settings (what the reports depend on) and the engine (what they do not)."""

    graph: str = defaults.GRAPH
    settings: dict[str, Any] = {}
    engine: Engine = "local"
    concurrency: int = 4
    workers: int = 1
    num_gpus: float = 0.0
    address: str | None = None
    exports: list[str] | None = None
    audit: str | None = None  # an audit trail path (None: $EVLF_AUDIT, else none); not part of the resume key


def run_batch(
    items: Sequence[BatchItem],
    out_dir: str | Path,
    options: BatchOptions,
    *,
    pipeline: Any | None = None,
    on_result: Callable[[ResultRow], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Run every study of `items` not already done in `out_dir`; `on_start(total, skipped)` then `on_result` per study."""
    from evlf.core.plugins import get_host

    get_host().registries.graphs.get(options.graph)  # an unknown graph stops here, before any worker starts
    exports = parse_exports(options.exports)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / ".batch.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(out, "another evlf batch is writing to this folder") from None
    try:
        return _run_locked(items, out, options, exports, pipeline, on_result, on_start)
    finally:
        lock.release()


def _run_locked(
    items: Sequence[BatchItem],
    out: Path,
    options: BatchOptions,
    exports: list[ExportSpec],
    pipeline: Any | None,
    on_result: Callable[[ResultRow], None] | None,
    on_start: Callable[[int, int], None] | None,
) -> BatchSummary:
    start = time.perf_counter()
    log = ResultsLog(out)
    done = log.done_keys(out)
    config = config_key(options.graph, options.settings)
    summary = BatchSummary(total=len(items))
    jobs: list[Job] = []
    unreadable: list[ResultRow] = []
    for item in items:
        try:
            key = study_key(item, config)
        except InputError as exc:
            unreadable.append(ResultRow(id=item.id, status="failed", error=describe(exc)))
            continue
        if key in done:
            summary.skipped += 1
        else:
            jobs.append(Job(key=key, study=item.study()))
    if on_start is not None:
        on_start(summary.total, summary.skipped)

    def record(row: ResultRow) -> None:
        log.append(row)
        summary.ok += row.status == "ok"
        summary.failed += row.status == "failed"
        if on_result is not None:
            on_result(row)

    for row in unreadable:
        record(row)
    for outcome in _outcomes(jobs, options, pipeline):
        record(_row(outcome, out, exports))
    summary.wall_s = time.perf_counter() - start
    return summary


def _outcomes(jobs: list[Job], options: BatchOptions, pipeline: Any | None) -> Iterator[Outcome]:
    if options.engine == "ray":
        from evlf.batch.ray_engine import run_ray

        return run_ray(
            jobs,
            options.graph,
            options.settings,
            concurrency=options.concurrency,
            workers=options.workers,
            num_gpus=options.num_gpus,
            address=options.address,
            audit=options.audit,
        )
    from evlf.batch.local import run_local

    return run_local(jobs, options.graph, options.settings, concurrency=options.concurrency, pipeline=pipeline, audit=options.audit)


def _row(outcome: Outcome, out: Path, exports: list[ExportSpec]) -> ResultRow:
    """Write the outcome's report files (atomically) and make its results line."""
    report = outcome.parsed()
    if report is None:
        return ResultRow(id=outcome.id, key=outcome.key, status="failed", latency_ms=outcome.latency_ms, error=outcome.error)
    try:
        files = write_reports(report, outcome.key, out, exports)
    except Exception as exc:  # an exporter that fails fails this study, not the batch
        return ResultRow(id=outcome.id, key=outcome.key, status="failed", latency_ms=outcome.latency_ms, error=describe(exc))
    return ResultRow(
        id=outcome.id,
        key=outcome.key,
        status="ok",
        diagnosis=report.diagnosis.primary if report.diagnosis else None,
        findings=len(report.findings),
        warnings=report.warnings,
        model=report.provenance.model_id,
        latency_ms=outcome.latency_ms,
        reports=files,
    )
