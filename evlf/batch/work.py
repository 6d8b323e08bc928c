"""The unit of work both engines share: run a chunk of studies on one Pipeline, one Outcome per study.

An Outcome carries the report as JSON (so it crosses a Ray object store
unchanged) or the one-line error of a study that failed. A failure fails only
its own study: when the chunk's `run_many` raises, each study is run alone.
A ConfigError (a setting that cannot work for any study) stops the batch.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from evlf.core.errors import ConfigError
from evlf.core.types import Report, Study


class Job(BaseModel):
    """A study to run and its resume key."""

    key: str
    study: Study


class Outcome(BaseModel):
    """What one study came to: its report (JSON) or its error."""

    id: str
    key: str
    report: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0
    fatal: bool = False  # a ConfigError: the whole batch stops

    def parsed(self) -> Report | None:
        return None if self.report is None else Report.model_validate(self.report)


def make_pipeline(graph: str, settings: dict[str, Any], audit: str | None = None) -> Any:
    """The Pipeline a worker runs (the public API: a graph name, the Context settings, the audit trail)."""
    from evlf.agents.pipeline import Pipeline

    return Pipeline(graph, dict(settings), audit=audit, audit_entry="batch")


def describe(exc: BaseException) -> str:
    """A study's error as one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run_chunk(pipeline: Any, jobs: Sequence[Job], concurrency: int) -> list[Outcome]:
    """Run the jobs together (model calls batched across them); every job gets an Outcome."""
    studies = [j.study for j in jobs]
    t0 = time.perf_counter()
    try:
        if "return_exceptions" in inspect.signature(pipeline.run_many).parameters:
            results: list[Any] = pipeline.run_many(studies, concurrency=concurrency, return_exceptions=True)
        else:
            results = pipeline.run_many(studies, concurrency=concurrency)
    except ConfigError:
        raise  # a setting that cannot work (unknown backend, no model directory) fails the batch, not each study
    except Exception:
        if len(jobs) == 1:
            results = [_run_alone(pipeline, studies[0])]
        else:
            return [o for j in jobs for o in run_chunk(pipeline, [j], 1)]
    for result in results:
        if isinstance(result, ConfigError):
            raise result
    share_ms = (time.perf_counter() - t0) * 1000 / max(1, len(jobs))
    return [_outcome(j, r, share_ms) for j, r in zip(jobs, results, strict=True)]


def _run_alone(pipeline: Any, study: Study) -> Report | BaseException:
    try:
        return pipeline.run(study)
    except ConfigError:
        raise
    except Exception as exc:
        return exc


def _outcome(job: Job, result: Report | BaseException, share_ms: float) -> Outcome:
    if isinstance(result, BaseException):
        return Outcome(id=job.study.id, key=job.key, error=describe(result), latency_ms=share_ms)
    total = result.provenance.timings_ms.get("total")
    latency = float(total) if total is not None else share_ms
    return Outcome(id=job.study.id, key=job.key, report=result.model_dump(mode="json"), latency_ms=latency)
