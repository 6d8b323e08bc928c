"""`evlf diagnose` (images to a report) and `evlf graphs list|show`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from evlf.agents import defaults
from evlf.cli.common import console, err_console, print_json
from evlf.core.errors import InputError

graphs_app = typer.Typer(help="The agent graphs that can run a study.", no_args_is_help=True)

def diagnose(
    paths: list[Path] = typer.Argument(..., help="The study's image files (one study)."),
    graph: str = typer.Option(defaults.GRAPH, "--graph", "-g", help="Graph to run (see `evlf graphs list`)."),
    backend: str | None = typer.Option(None, "--backend", "-b", help="Model backend: demo, tiny, transformers, openai."),
    model: str | None = typer.Option(None, "--model", help="Model directory (transformers) or served model name (openai)."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="OpenAI-compatible base URL."),
    specialty: str | None = typer.Option(None, "--specialty", "-s", help="Force a specialty (comma-separated for several)."),
    question: str | None = typer.Option(None, "--question", "-q", help="A question about the images (VQA)."),
    task: str | None = typer.Option(None, "--task", help="diagnosis, vqa, grounding or report (default: vqa with a question, else diagnosis)."),
    modality: str | None = typer.Option(None, "--modality", help="Modality hint for images without DICOM tags (e.g. fundus, dermoscopy, CT)."),
    body_part: str | None = typer.Option(None, "--body-part", help="Body part hint routing reads (e.g. chest, liver, eye, skin)."),
    refiner: str | None = typer.Option(None, "--refiner", help="Box refiner: classical (default) or sam."),
    exemplars: int | None = typer.Option(None, "--exemplars", "-k", min=0, help="Number of retrieved exemplars."),
    case_store: Path | None = typer.Option(None, "--case-store", help="Case store for retrieval (default: EVLF_CASE_STORE or the user data dir)."),
    context_file: Path | None = typer.Option(None, "--context-file", help="JSON file with Context settings."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="SQLite file for durable, resumable runs."),
    fresh: bool = typer.Option(False, "--fresh", help="With --checkpoint: start over instead of resuming."),
    review: bool = typer.Option(False, "--review", help="Pause before the report for approval (needs --checkpoint)."),
    review_edit: Path | None = typer.Option(None, "--review-edit", help="With --review: replace the draft by this edited report JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the report JSON here."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    markdown: Path | None = typer.Option(None, "--md", help="Write a Markdown report here."),
    export: list[str] = typer.Option([], "--export", "-e", help="Write with a registered exporter, NAME=PATH (repeatable; see `evlf exporters list`)."),
    export_setting: list[str] = typer.Option([], "--export-setting", help="Exporter setting KEY=VALUE, e.g. fhir_version=R5 (repeatable)."),
    subject: str | None = typer.Option(None, "--subject", help="FHIR subject reference for the fhir exporter, e.g. Patient/123."),
    allow_patient_identity: bool = typer.Option(False, "--allow-patient-identity", help="Let exporters copy patient identity from the DICOM into FHIR."),
    deidentify: bool = typer.Option(False, "--deidentify", help="De-identify the DICOM SR/SEG written (PS3.15 basic profile, Retain UIDs option)."),
    study_id: str | None = typer.Option(None, "--id", help="Study id (default: derived from the file paths)."),
    audit: Path | None = typer.Option(None, "--audit", help="Append an audit record of this run to this trail (default: $EVLF_AUDIT; off when unset)."),
) -> None:
    """Read the images and write a reasoned, grounded report.

    \f
    Long because typer declares every command-line option as a parameter; the body is about 25 lines.
    """
    from evlf.cli.exporters import parse_settings, parse_targets, write_targets

    targets = parse_targets(export, {"json": out, "markdown": markdown, "html": html})
    if deidentify and allow_patient_identity:
        raise InputError("--deidentify", "cannot be combined with --allow-patient-identity")
    export_options = {"subject": subject, "allow_patient_identity": allow_patient_identity, "deidentify": deidentify, "settings": parse_settings(export_setting)}
    from evlf.agents.context import Context
    from evlf.agents.pipeline import Pipeline
    from evlf.core.types import Study

    updates = {"backend": backend, "model": model, "endpoint": endpoint, "refiner": refiner, "n_exemplars": exemplars,
               "case_store": str(case_store) if case_store else None, "seed": seed}
    settings = _settings(context_file, updates, review, checkpoint)
    pipeline = Pipeline(graph, Context.build(settings), checkpoint=checkpoint, audit=audit, audit_entry="cli")  # a bad configuration stops here, before ingest
    metadata = {key: value for key, value in (("modality", modality), ("body_part", body_part)) if value}  # hints routing reads
    kwargs: dict[str, Any] = {"task": task or ("vqa" if question else "diagnosis"), "question": question, "specialty": specialty, "metadata": metadata}
    if study_id:
        kwargs["id"] = study_id
    try:
        study = Study.from_paths(list(paths), **kwargs)
    except ValueError as exc:
        raise InputError("study", " ".join(str(exc).split())) from None
    report = _run(pipeline, study, graph, _reviewer(review_edit) if review else None, fresh)
    from evlf.core.exporter import ExportOptions

    write_targets(report, targets, ExportOptions(**export_options))
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    summary(report)
    for label, path in targets:
        console.print(f"wrote {label}: {path}")
    if report.provenance.audit_id:
        console.print(f"audit record: {report.provenance.audit_id} (evlf audit show {report.provenance.audit_id})")


def _settings(context_file: Path | None, updates: dict[str, Any], review: bool, checkpoint: Path | None) -> dict[str, Any]:
    """The Context settings: the context file, then the flags given."""
    from evlf.agents.context import Context

    settings: dict[str, Any] = Context.from_file(context_file).model_dump() if context_file else {}
    settings.update({k: v for k, v in updates.items() if v is not None})
    if review:
        settings["review"] = True
        if checkpoint is None:
            raise InputError("--review", "needs --checkpoint PATH so the paused run can be resumed")
    return settings


def _reviewer(review_edit: Path | None) -> Any:
    """The --review decision: the edited report from --review-edit, else a yes/no on the terminal."""

    def reviewer(draft: Any) -> dict[str, Any]:
        if review_edit is not None:
            try:
                return {"action": "edit", "report": json.loads(review_edit.read_text())}
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(review_edit, f"cannot read the edited report: {exc}") from None
        err_console.print(f"[bold]Draft for review[/bold]: {escape(draft.diagnosis.primary if draft.diagnosis else 'no diagnosis')}, {len(draft.findings)} findings")
        if not sys.stdin.isatty() or not typer.confirm("Approve this report?", default=False, err=True):
            raise typer.Exit(3)
        return {"action": "approve"}

    return reviewer


def _run(pipeline: Any, study: Any, graph: str, reviewer: Any, fresh: bool) -> Any:
    """Run the study with each finished node shown on stderr."""
    with err_console.status(f"running graph {graph!r}") as status:

        def show(update: Any) -> None:
            where = "/".join((*update.path, update.node))
            status.update(f"graph {graph!r}: {where}")
            err_console.print(f"[dim]  done {escape(where)}[/dim]", highlight=False)

        return pipeline.run(study, reviewer=reviewer, fresh=fresh, on_update=show)


def summary(report: Any) -> None:
    from rich.table import Table

    p = report.provenance
    from evlf.plugins.exporters.text import model_banner

    banner = model_banner(report)  # untrained, or the demo model: the same words the HTML and Markdown reports carry
    if banner:
        console.print(f"[bold yellow]{escape(banner)}[/bold yellow]")
    console.print("[bold red]Not for clinical use.[/bold red]")
    d = report.diagnosis
    console.print(f"[bold]{escape(report.study_id)}[/bold] · {', '.join(report.specialties)} · graph {p.graph} · {p.model_id}")
    console.print(f"diagnosis: [bold]{escape(d.primary) if d else '-'}[/bold]" + (f" ({d.confidence:.2f})" if d else ""))
    if report.answer:
        console.print(f"answer: {escape(report.answer)}")
    if report.findings:
        table = Table("#", "finding", "conf.", "status", "agreement", "box")
        for n, f in enumerate(report.findings, start=1):
            box = ", ".join(f"{b.x0:.0f},{b.y0:.0f},{b.x1:.0f},{b.y1:.0f}" for b in f.boxes) or "-"
            table.add_row(str(n), escape(f.label), f"{f.confidence:.2f}", f.status, "-" if f.agreement is None else f"{f.agreement:.2f}", box)
        console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")


@graphs_app.command("list")
def graphs_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The registered graphs."""
    from rich.table import Table

    from evlf.core.plugins import get_host

    regs = get_host().registries.graphs
    rows = [
        {"name": e.name, "version": e.obj.version, "plugin": e.plugin, "description": e.obj.description}
        for e in regs.entries()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("graph", "version", "plugin", "description")
    for r in rows:
        table.add_row(r["name"], r["version"], r["plugin"], r["description"])
    console.print(table)


@graphs_app.command("show")
def graphs_show(name: str = typer.Argument(..., help="Graph name.")) -> None:
    """Print the graph as Mermaid text (nothing is fetched)."""
    from evlf.core.plugins import get_host

    compiled = get_host().registries.graphs.get(name).build()
    sys.stdout.write(compiled.get_graph(xray=1).draw_mermaid() + "\n")


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose)
    app.add_typer(graphs_app, name="graphs")
