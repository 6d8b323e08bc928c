"""Run agent graphs over evaluation cases, writing each case's prediction as soon as it is known.

Each run (a graph with a context) gets a folder holding `run.json` (what was
run) and `predictions.jsonl` (the `evlf score` format plus latency, model
calls, tokens and any error per case). Lines are appended and flushed per
chunk of cases, so an interrupted run resumes where it stopped: cases already
predicted are skipped, failed ones are retried. Model calls go through a
shared `CachingBackend`, so even the cases of an interrupted chunk cost no
second model call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from evlf.core.errors import InputError
from evlf.core.types import ImageRef, Report, Study
from evlf.core.dataset import Case

TASKS = {"cls": "diagnosis", "grounding": "grounding", "vqa": "vqa"}


class PipelineLike(Protocol):
    """What the runner needs of evlf.agents.pipeline.Pipeline."""

    def run_many(self, studies: list[Study], concurrency: int = 4) -> list[Report]: ...


PipelineFactory = Callable[["RunSpec", Any], PipelineLike]  # (run, shared backend or None) -> pipeline


class RunSpec(BaseModel):
    """One column of the comparison: a graph with a context, under a folder name."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@+-]+$")
    graph: str
    context: dict[str, Any] = Field(default_factory=dict)


class RunOutcome(BaseModel):
    spec: RunSpec
    predictions: Path
    ran: int = 0
    resumed: int = 0
    failed: int = 0
    cache_hits: int | None = None
    cache_misses: int | None = None
    wall_s: float = 0.0


def case_to_study(case: Case) -> Study:
    return Study(
        id=case.id,
        images=[ImageRef(path=p) for p in case.images],
        task=TASKS[case.task],  # type: ignore[arg-type]
        question=case.question,
        specialty=case.specialty,
        metadata={"modality": case.modality},
    )


def normalise_label(label: str | None, label_set: Sequence[str] | None) -> str | None:
    """Map a free-text label onto the label set ignoring case and surrounding spaces; unknown labels stay as given."""
    if label is None or not label_set:
        return label
    by_key = {x.strip().lower(): x for x in label_set}
    return by_key.get(label.strip().lower(), label)


def report_boxes(report: Report) -> list[list[float]]:
    """One predicted box per finding on the first image: the refined box when there is one, else the model's first."""
    boxes = []
    for f in report.findings:
        box = f.refined_box or (f.boxes[0] if f.boxes else None)
        if box is not None and box.image_index == 0:
            boxes.append(box.as_list())
    return boxes


def report_latency_ms(report: Report) -> float | None:
    t = report.provenance.timings_ms
    if "total" in t:
        return float(t["total"])
    return float(sum(t.values())) if t else None


def prediction_line(case: Case, report: Report, label_set: Sequence[str] | None, fallback_ms: float) -> dict[str, Any]:
    p = report.provenance
    latency = report_latency_ms(report)
    return {
        "id": case.id,
        "label": normalise_label(report.diagnosis.primary if report.diagnosis else None, label_set),
        "boxes": report_boxes(report),
        "answer": report.answer,
        "latency_ms": latency if latency is not None else fallback_ms,
        "model_calls": p.model_calls,
        "tokens_in": p.tokens_in,
        "tokens_out": p.tokens_out,
        "model": p.model_id,
        "trained": p.trained,
        "warnings": report.warnings,
    }


def failure_line(case: Case, error: BaseException) -> dict[str, Any]:
    return {"id": case.id, "label": None, "boxes": [], "answer": None, "error": f"{type(error).__name__}: {error}"}


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """Predictions already written, by id; a torn last line (interrupted write) is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            done[row["id"]] = row
    return done


def _check_run_file(folder: Path, spec: RunSpec, dataset: str) -> None:
    """Refuse to resume into a folder holding a different run; write run.json for a new one."""
    run_file = folder / "run.json"
    wanted = {"graph": spec.graph, "context": spec.context, "dataset": dataset}
    if run_file.exists():
        have = json.loads(run_file.read_text())
        if {k: have.get(k) for k in wanted} != json.loads(json.dumps(wanted)):
            raise InputError(folder, "holds predictions of a different run (graph, context or dataset); choose another --out")
    else:
        run_file.write_text(json.dumps(wanted, indent=2) + "\n")


def run_cases(
    spec: RunSpec,
    cases: Sequence[Case],
    pipeline: PipelineLike,
    out_dir: Path,
    *,
    dataset: str,
    concurrency: int = 4,
    label_set: Sequence[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RunOutcome:
    """Predict every case not already predicted under out_dir/spec.name; return what happened."""
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    _check_run_file(folder, spec, dataset)
    path = folder / "predictions.jsonl"
    wanted = {c.id for c in cases}
    previous = read_predictions(path)
    kept = {i: row for i, row in previous.items() if i in wanted and not row.get("error")}
    # rewrite without failed or torn lines, so the file holds each id once
    path.write_text("".join(json.dumps(row) + "\n" for row in kept.values()), encoding="utf-8")
    todo = [c for c in cases if c.id not in kept]
    outcome = RunOutcome(spec=spec, predictions=path, resumed=len(kept))
    if on_progress is not None and kept:
        on_progress(len(kept))
    start = time.perf_counter()
    step = max(1, concurrency)
    with path.open("a", encoding="utf-8") as out:
        for first in range(0, len(todo), step):
            chunk = todo[first : first + step]
            lines = _run_chunk(pipeline, chunk, concurrency, label_set)
            for line in lines:
                out.write(json.dumps(line) + "\n")
            out.flush()
            outcome.ran += len(chunk)
            outcome.failed += sum(1 for line in lines if line.get("error"))
            if on_progress is not None:
                on_progress(len(chunk))
    outcome.wall_s = time.perf_counter() - start
    return outcome


def _run_chunk(pipeline: PipelineLike, chunk: Sequence[Case], concurrency: int, label_set: Sequence[str] | None) -> list[dict[str, Any]]:
    """Reports for a chunk; if the batch fails, each case is retried alone so one bad case fails only itself."""
    studies = [case_to_study(c) for c in chunk]
    t0 = time.perf_counter()
    try:
        reports = pipeline.run_many(studies, concurrency=concurrency)
        if len(reports) != len(chunk):
            raise RuntimeError(f"pipeline returned {len(reports)} reports for {len(chunk)} studies")
        per_case_ms = (time.perf_counter() - t0) * 1000 / len(chunk)
        return [prediction_line(c, r, label_set, per_case_ms) for c, r in zip(chunk, reports, strict=True)]
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if len(chunk) == 1:
            return [failure_line(chunk[0], exc)]
    return [_run_one(pipeline, c, s, label_set) for c, s in zip(chunk, studies, strict=True)]


def _run_one(pipeline: PipelineLike, case: Case, study: Study, label_set: Sequence[str] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        (report,) = pipeline.run_many([study], concurrency=1)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return failure_line(case, exc)
    return prediction_line(case, report, label_set, (time.perf_counter() - t0) * 1000)
