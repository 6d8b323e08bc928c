"""`evlf batch MANIFEST --out DIR`: many studies, one report each, resumable, on this machine or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from evlf.agents import defaults
from evlf.cli.common import console, err_console, print_json


def _settings(context_file: Path | None, updates: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's Context settings, validated and with every default filled in (they key the resume)."""
    from evlf.agents.context import Context

    settings: dict[str, Any] = Context.from_file(context_file).model_dump() if context_file else {}
    settings.update({k: v for k, v in updates.items() if v is not None})
    return Context.build(settings).model_dump(mode="json")  # defaults filled in; a bad setting is a ConfigError


def batch(
    manifest: Path = typer.Argument(..., help="JSONL manifest (one study a line; the dataset format works too) or a folder of images."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: reports/ and results.jsonl."),
    graph: str = typer.Option(defaults.GRAPH, "--graph", "-g", help="Graph to run (see `evlf graphs list`)."),
    backend: str | None = typer.Option(None, "--backend", "-b", help="Model backend: demo, tiny, transformers, openai."),
    model: str | None = typer.Option(None, "--model", help="Model directory (transformers) or served model name (openai)."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="OpenAI-compatible base URL."),
    refiner: str | None = typer.Option(None, "--refiner", help="Box refiner: classical (default) or sam."),
    exemplars: int | None = typer.Option(None, "--exemplars", "-k", min=0, help="Number of retrieved exemplars."),
    context_file: Path | None = typer.Option(None, "--context-file", help="JSON file with Context settings."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1, help="Longest model answer, in tokens."),
    concurrency: int = typer.Option(4, "--concurrency", "-c", min=1, help="Studies in flight per worker (their model calls are batched)."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data, an actor pool)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Ray: Pipeline actors (each loads the model once)."),
    gpus: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="Ray: GPUs each actor reserves (1 for one GPU each)."),
    address: str | None = typer.Option(None, "--address", help="Ray: cluster address (e.g. ray://head:10001 or auto); none starts a local Ray."),
    export: list[str] = typer.Option(None, "--export", "-e", help="Exporter NAME or NAME=PATTERN ({id}, {key}); repeatable; default json."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    audit: Path | None = typer.Option(None, "--audit", help="Append an audit record per study to this trail (default: $EVLF_AUDIT; off when unset)."),
) -> None:
    """Run every study of MANIFEST; a rerun into the same --out skips the studies already done."""
    from evlf.batch.manifest import read_manifest
    from evlf.batch.runner import BatchOptions, run_batch
    from evlf.core.errors import InputError

    if engine not in ("local", "ray"):
        raise InputError("--engine", f"unknown engine {engine!r} (local or ray)")
    if engine == "local" and (address or gpus or workers > 1):
        raise InputError("--engine", "--address, --gpus-per-worker and --workers need --engine ray")
    items = read_manifest(manifest)
    updates = {"backend": backend, "model": model, "endpoint": endpoint, "refiner": refiner, "n_exemplars": exemplars, "seed": seed,
               "max_new_tokens": max_new_tokens}
    options = BatchOptions(
        graph=graph,
        settings=_settings(context_file, updates),
        engine=engine,  # type: ignore[arg-type]
        concurrency=concurrency,
        workers=workers,
        num_gpus=gpus,
        address=address,
        exports=list(export) if export else None,
        audit=str(audit.resolve()) if audit else None,
    )
    with _progress() as progress:
        summary = run_batch(items, out, options, on_start=progress.start, on_result=progress.advance)
    if as_json:
        print_json(summary.model_dump())
        return
    console.print(
        f"{summary.ok} reported, {summary.failed} failed, {summary.skipped} already done "
        f"of {summary.total} in {summary.wall_s:.1f} s · {escape(str(out / 'results.jsonl'))}"
    )


class _progress:
    """A rich progress bar on stderr: done / failed / rate / ETA."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed[/red]"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self.task: Any = None
        self.failed = 0

    def __enter__(self) -> _progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int, skipped: int) -> None:
        self.task = self.bar.add_task("batch", total=total, completed=skipped, failed=0, rate="")
        if skipped:
            err_console.print(f"{skipped} of {total} studies already done: skipped")

    def advance(self, row: Any) -> None:
        self.failed += row.status == "failed"
        self.bar.advance(self.task)
        speed = self.bar.tasks[0].speed
        self.bar.update(self.task, failed=self.failed, rate=f"{speed:.2f}/s" if speed else "")
        if row.status == "failed":
            err_console.print(f"[yellow]failed[/yellow] {escape(row.id)}: {escape(row.error or '')}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
