"""`evlf eval`: several graphs (or contexts) over the same cases, scored, compared, tabulated and plotted.

Output folder layout:
    call_cache.sqlite          model calls shared by every run (see call_cache)
    truth.jsonl                the cases evaluated (after --limit), for `evlf score --truth`
    <run>/run.json             graph, context and dataset of the run
    <run>/predictions.jsonl    one line per case, the format `evlf score` reads
    <run>/scoring.json         the label set, unknown-label rule, bootstrap and seed used, which
                               `evlf score --pred <run>/predictions.jsonl` reads to reproduce the numbers
    summary.json               {"dataset", "n_cases", "graphs": {run: {overall, by_modality,
                               by_specialty, latency_ms, model_calls_per_case, tokens_*_per_case,
                               n_failed, ...}}, "comparisons": [paired, each run vs the first]}
    summary.md, summary.csv    the same as tables
    metrics_by_modality.png    metric bars per modality with 95% CI whiskers
    latency.png                latency distribution per run
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evlf.core.backends.base import Backend
from evlf.core.errors import InputError
from evlf.eval.aggregate import DEFAULT_BOOTSTRAP, summarise
from evlf.eval.call_cache import CachingBackend
from evlf.eval.compare import paired_comparison
from evlf.core.dataset import Case, load_image_folder, load_jsonl, read_jsonl_models, write_jsonl
from evlf.eval.plots import plot_latency, plot_metrics_by_modality
from evlf.eval.runner import PipelineFactory, PipelineLike, RunOutcome, RunSpec, read_predictions, run_cases
from evlf.eval.scoring import CaseResult, PredictionLine, ScoringSettings, TruthLine, match_lines, score_case, truth_label_set
from evlf.eval.summary import cost_stats, write_summary

BUILTIN_DATASETS = {"lesions-train": "train", "lesions-test": "test"}
BackendFactory = Callable[[dict[str, Any]], Backend]


def load_dataset(name: str, labels_csv: Path | None = None) -> tuple[Path, list[Case]]:
    """(source path, cases) from a built-in name, a dataset JSONL, or a folder of images with a CSV of labels."""
    if name in BUILTIN_DATASETS:
        from evlf.eval.lesions import ensure_lesion_set

        path = ensure_lesion_set(split=BUILTIN_DATASETS[name])
        return path, load_jsonl(path)
    path = Path(name)
    if path.is_dir():
        csv_path = labels_csv or path / "labels.csv"
        return csv_path, load_image_folder(path, csv_path)
    if labels_csv is not None:
        raise InputError(labels_csv, "a CSV of labels goes with a folder of images, not with a JSONL dataset")
    if not path.is_file():
        raise InputError(path, f"no such dataset file or folder (built-in datasets: {', '.join(BUILTIN_DATASETS)})")
    return path, load_jsonl(path)


def load_context_file(path: Path) -> dict[str, Any]:
    """A context file's contents, validated as evlf.agents.context.Context when the agents layer is present."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such context file") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(path, "a context file holds one JSON object")
    try:
        from evlf.agents.context import Context
    except ImportError:
        return data
    return Context.from_file(path).model_dump(mode="json", exclude_defaults=True)


def plan_runs(graphs: Sequence[str], contexts: Sequence[tuple[str, dict[str, Any]]], backend: str | None = None) -> list[RunSpec]:
    """Pair graphs and contexts: as many of each (pairwise), one graph x many contexts, or many graphs x one context."""
    graphs = list(graphs) or ["full"]
    ctxs = list(contexts) or [("", {})]
    if len(ctxs) == len(graphs):
        pairs = list(zip(graphs, ctxs, strict=True))
    elif len(graphs) == 1:
        pairs = [(graphs[0], c) for c in ctxs]
    elif len(ctxs) == 1:
        pairs = [(g, ctxs[0]) for g in graphs]
    else:
        raise InputError(None, f"{len(graphs)} graphs and {len(ctxs)} context files do not pair up (give one, or as many as graphs)")
    vary = len({c[0] for _, c in pairs}) > 1
    specs: list[RunSpec] = []
    for graph, (stem, ctx) in pairs:
        ctx = dict(ctx)
        if backend is not None:
            ctx["backend"] = backend
        name = f"{graph}@{stem}" if vary and stem else graph
        specs.append(RunSpec(name=name, graph=graph, context=ctx))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(None, f"two runs would share a name: {names}")
    return specs


def default_backend_factory(context: dict[str, Any]) -> Backend:
    from evlf.agents.context import Context
    from evlf.agents.resources import build_backend

    return build_backend(Context.model_validate(context))


def audited_factory(audit: str | Path) -> PipelineFactory:
    """The default factory, with every run's reports recorded in the audit trail at `audit`."""

    def factory(spec: RunSpec, backend: Backend | None) -> PipelineLike:
        from evlf.agents.pipeline import Pipeline

        return Pipeline(graph=spec.graph, context=spec.context, backend=backend, audit=audit, audit_entry="eval")

    return factory


def default_pipeline_factory(spec: RunSpec, backend: Backend | None) -> PipelineLike:
    from evlf.agents.pipeline import Pipeline

    return Pipeline(graph=spec.graph, context=spec.context, backend=backend)


class BackendPool:
    """One cached backend per model configuration, shared by the runs that use it."""

    def __init__(self, factory: BackendFactory, cache_path: Path) -> None:
        self.factory = factory
        self.cache_path = cache_path
        self._backends: dict[str, CachingBackend] = {}

    def get(self, context: dict[str, Any]) -> CachingBackend:
        key = json.dumps({k: context.get(k) for k in ("backend", "model", "endpoint", "backend_options")}, sort_keys=True)
        if key not in self._backends:
            self._backends[key] = CachingBackend(self.factory(context), self.cache_path)
        return self._backends[key]

    def close(self) -> None:
        for b in self._backends.values():
            b.close()


def score_run(predictions: Path, cases: Sequence[Case], dataset: Path, label_set: Sequence[str]) -> list[CaseResult]:
    truths = [(i, TruthLine.model_validate(c.model_dump(mode="json"))) for i, c in enumerate(cases, start=1)]
    preds = read_jsonl_models(predictions, PredictionLine)
    pairs = match_lines(predictions, dataset, preds, truths, set(label_set), "wrong")
    return [score_case(t, p, set(label_set)) for t, p in pairs]


def evaluate(
    dataset: str,
    specs: Sequence[RunSpec],
    out_dir: Path,
    *,
    labels_csv: Path | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    pipeline_factory: PipelineFactory = default_pipeline_factory,
    backend_factory: BackendFactory | None = default_backend_factory,
    progress: bool = True,
) -> dict[str, Any]:
    """Run, score and summarise; returns the summary written to out_dir/summary.json."""
    source, cases = load_dataset(dataset, labels_csv)
    if limit is not None:
        cases = cases[:limit]
    labels = sorted(truth_label_set(TruthLine.model_validate(c.model_dump(mode="json")) for c in cases))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "truth.jsonl"  # the cases as evaluated, for `evlf score --truth`
    write_jsonl(path, cases)
    pool = BackendPool(backend_factory, out_dir / "call_cache.sqlite") if backend_factory is not None else None
    outcomes: list[RunOutcome] = []
    try:
        with _progress(progress) as bar:
            for spec in specs:
                backend = pool.get(spec.context) if pool is not None else None
                pipeline = pipeline_factory(spec, backend)
                task = bar.add_task(spec.name, total=len(cases)) if bar is not None else None
                advance = (lambda n, t=task: bar.advance(t, n)) if bar is not None else None
                hits0, misses0 = (backend.hits, backend.misses) if backend is not None else (0, 0)
                outcome = run_cases(spec, cases, pipeline, out_dir, dataset=str(source), concurrency=concurrency, label_set=labels, on_progress=advance)
                if backend is not None:
                    outcome.cache_hits, outcome.cache_misses = backend.hits - hits0, backend.misses - misses0
                ScoringSettings(labels=labels, bootstrap=n_boot, seed=seed).write(outcome.predictions.parent)
                outcomes.append(outcome)
    finally:
        if pool is not None:
            pool.close()
    summary = summarise_runs(dataset, source, path, cases, outcomes, labels, n_boot=n_boot, seed=seed)
    write_summary(summary, out_dir)
    plot_metrics_by_modality(summary, out_dir / "metrics_by_modality.png")
    latencies = {
        o.spec.name: [r["latency_ms"] for r in read_predictions(o.predictions).values() if r.get("latency_ms") is not None]
        for o in outcomes
    }
    plot_latency(latencies, out_dir / "latency.png")
    return summary


def summarise_runs(
    name: str, source: Path, path: Path, cases: Sequence[Case], outcomes: Sequence[RunOutcome], labels: Sequence[str], *, n_boot: int, seed: int
) -> dict[str, Any]:
    results: dict[str, list[CaseResult]] = {}
    graphs: dict[str, Any] = {}
    for o in outcomes:
        results[o.spec.name] = score_run(o.predictions, cases, path, labels)
        scored = summarise(results[o.spec.name], n_boot=n_boot, seed=seed)
        rows = list(read_predictions(o.predictions).values())
        graphs[o.spec.name] = {
            "graph": o.spec.graph,
            "context": o.spec.context,
            **scored,
            **cost_stats(rows),
            "run": {"ran": o.ran, "resumed": o.resumed, "failed_now": o.failed, "wall_s": o.wall_s,
                    "cache_hits": o.cache_hits, "cache_misses": o.cache_misses},
        }
    names = list(results)
    comparisons = [
        {"a": names[0], "b": other, **paired_comparison(results[names[0]], results[other], n_boot=n_boot, seed=seed)}
        for other in names[1:]
    ]
    return {
        "dataset": name,
        "dataset_path": str(source),
        "truth": str(path),
        "n_cases": len(cases),
        "labels": list(labels),
        "graphs": graphs,
        "comparisons": comparisons,
    }


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True))
