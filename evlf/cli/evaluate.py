"""`evlf score` (re-score a predictions file, no model needed) and `evlf eval` (run graphs over a dataset)."""

from __future__ import annotations

from pathlib import Path

import typer

from evlf.cli.common import console, print_json
from evlf.core.errors import InputError

_METRIC_NAMES = {"accuracy": "accuracy", "f1_macro": "macro-F1", "miou": "mIoU", "acc50": "Acc@0.5", "vqa_exact_match": "VQA EM (closed)"}


def _parse_labels(labels: str | None, labels_file: Path | None) -> list[str] | None:
    if labels_file is not None:
        if not labels_file.is_file():
            raise InputError(labels_file, "no such file")
        return [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if labels is not None:
        return [x.strip() for x in labels.split(",") if x.strip()]
    return None


def _fmt(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _print_summary_table(summary: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("group")
    table.add_column("n", justify="right")
    for name in _METRIC_NAMES.values():
        table.add_column(name, justify="right")
    rows = [("overall", summary["overall"])]
    rows += [(f"modality={k}", v) for k, v in summary["by_modality"].items()]
    rows += [(f"specialty={k}", v) for k, v in summary["by_specialty"].items()]
    for name, m in rows:
        table.add_row(name, str(m["n_cases"]), *(_fmt(m[k], m["ci"].get(k)) for k in _METRIC_NAMES))
    console.print(table)


def score(
    pred: Path = typer.Option(..., "--pred", help="Predictions JSONL (id + label/boxes/answer)."),
    truth: Path = typer.Option(..., "--truth", help="Truth JSONL (the dataset format)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated label set (default: scoring.json beside --pred, else the truth's labels)."),
    labels_file: Path | None = typer.Option(None, "--labels-file", help="Label set, one label a line."),
    lenient_labels: bool | None = typer.Option(None, "--lenient-labels/--strict-labels", help="Count predicted labels outside the set as wrong instead of failing (default: as scoring.json says, else strict)."),
    bootstrap: int | None = typer.Option(None, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none; default: scoring.json's, else 1000)."),
    seed: int | None = typer.Option(None, "--seed", help="Bootstrap seed (default: scoring.json's, else 0)."),
) -> None:
    """Score a predictions file against truth: accuracy, macro-F1, mIoU, Acc@0.5 overall and per modality/specialty.

    Boxes are matched one-to-one per case (Hungarian on IoU); unmatched true
    boxes and surplus predicted boxes count IoU 0. A null label counts as a
    wrong answer; a missing field, an unknown id or label is an error (exit 2).
    Predictions written by `evlf eval` carry a scoring.json beside them (label
    set, unknown-label rule, bootstrap, seed): it is read, so the numbers are
    eval's own; flags given here override it.
    """
    from evlf.eval.aggregate import DEFAULT_BOOTSTRAP, summarise
    from evlf.eval.scoring import ScoringSettings, score_files

    saved = ScoringSettings.beside(pred)
    label_set = _parse_labels(labels, labels_file)
    if label_set is None and saved is not None:
        label_set = saved.labels
    if lenient_labels is None:
        lenient_labels = saved is not None and saved.unknown_labels == "wrong"
    n_boot = bootstrap if bootstrap is not None else (saved.bootstrap if saved else DEFAULT_BOOTSTRAP)
    boot_seed = seed if seed is not None else (saved.seed if saved else 0)
    results = score_files(pred, truth, labels=label_set, unknown_labels="wrong" if lenient_labels else "error")
    summary = summarise(results, n_boot=n_boot, seed=boot_seed)
    if as_json:
        print_json(summary)
    else:
        _print_summary_table(summary, f"{pred} vs {truth}")


def eval_command(
    dataset: str = typer.Argument(..., help="Dataset JSONL, a folder of images (with --labels-csv), or a built-in name: lesions-train, lesions-test."),
    labels_csv: Path | None = typer.Option(None, "--labels-csv", help="CSV of labels for a folder of images (default: FOLDER/labels.csv)."),
    graph: list[str] = typer.Option([], "--graph", "-g", help="Graph to run (repeat to compare; default: full)."),
    context_file: list[Path] = typer.Option([], "--context-file", "-c", help="Context JSON (repeat: one per graph, or several for one graph)."),
    backend: str | None = typer.Option(None, "--backend", help="Backend for every run (overrides the context files)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N cases."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Studies in flight at once."),
    out: Path = typer.Option(..., "--out", help="Output folder (re-running into it resumes)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json to stdout."),
    audit: Path | None = typer.Option(None, "--audit", help="Append an audit record per case and run to this trail (default: $EVLF_AUDIT; off when unset)."),
) -> None:
    """Run graphs over the same cases; write predictions, summary (JSON, Markdown, CSV) and plots to --out."""
    from evlf.eval.harness import audited_factory, evaluate, load_context_file, plan_runs

    contexts = [(p.stem, load_context_file(p)) for p in context_file]
    specs = plan_runs(graph, contexts, backend)
    factory = {"pipeline_factory": audited_factory(audit)} if audit else {}
    summary = evaluate(dataset, specs, out, labels_csv=labels_csv, limit=limit, concurrency=concurrency, n_boot=bootstrap, seed=seed, **factory)
    if as_json:
        print_json(summary)
        return
    for name, run in summary["graphs"].items():
        _print_summary_table(run, f"{name} on {summary['dataset']} ({summary['n_cases']} cases)")
        lat = run["latency_ms"]
        console.print(
            f"{name}: latency mean {_fmt(lat['mean'])} ms, model calls/case {_fmt(run['model_calls_per_case'])}, "
            f"failed {run['n_failed']}" + (" [yellow](untrained model)[/yellow]" if run["untrained"] else "")
        )
    console.print(f"wrote {out / 'summary.md'}, summary.json, summary.csv, metrics_by_modality.png, latency.png")


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("eval")(eval_command)
