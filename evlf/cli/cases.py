"""`evlf cases`: build and search the store of solved cases used for few-shot examples."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from evlf.cli.common import console, err_console, print_json
from evlf.retrieval.paths import STORE_ENV, default_store_path

if TYPE_CHECKING:
    from evlf.retrieval import CaseStore

cases_app = typer.Typer(help="Build and search the case store (similar solved cases for few-shot prompting).", no_args_is_help=True)

StoreOpt = typer.Option(None, "--store", help=f"Case store folder (default: ${STORE_ENV} or the user data dir).")


def _store_path(store: Path | None) -> Path:
    return store if store is not None else default_store_path()


@cases_app.command("add")
def add(
    dataset: Path = typer.Argument(..., help="Dataset JSONL (docs/dataset-format.md); each line's first image becomes a case."),
    store: Path | None = StoreOpt,
    factory: str | None = typer.Option(None, "--index", help="faiss factory string for a new store (default: by size)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Add the cases of a dataset file (all or none; a case id already stored is refused: see `evlf cases update`)."""
    from evlf.core.errors import InputError
    from evlf.retrieval import CaseStore, read_dataset

    cases = read_dataset(dataset)
    with CaseStore.open(_store_path(store), create=True, factory=factory) as s:
        _warn(s)
        taken = [c.case_id for c in cases if c.case_id in s]
        if taken:
            raise InputError(dataset, f"case id {taken[0]!r} is already in the store; replace stored cases with `evlf cases update {dataset}`")
        s.add(cases)
        total = len(s)
    _done("added", len(cases), total, store, as_json)


@cases_app.command("update")
def update(
    dataset: Path = typer.Argument(..., help="Dataset JSONL whose cases replace the stored ones with the same ids."),
    store: Path | None = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Replace stored cases by id (labels, answer, image); every id is checked first: one not in the store is refused and nothing changes."""
    from evlf.core.errors import InputError
    from evlf.retrieval import CaseStore, read_dataset

    cases = read_dataset(dataset)
    with CaseStore.open(_store_path(store)) as s:
        _warn(s)
        missing = [c.case_id for c in cases if c.case_id not in s]
        if missing:
            raise InputError(dataset, f"case id {missing[0]!r} is not in the store; add new cases with `evlf cases add {dataset}`")
        for case in cases:
            s.update(case)
        total = len(s)
    _done("updated", len(cases), total, store, as_json)


def _warn(store: CaseStore) -> None:
    for w in store.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}")


def _done(verb: str, n: int, total: int, store: Path | None, as_json: bool) -> None:
    if as_json:
        print_json({verb: n, "total": total, "store": str(_store_path(store))})
    else:
        console.print(f"{verb} {n} cases; the store at {_store_path(store)} holds {total}")


@cases_app.command("search")
def search(
    image: Path = typer.Argument(..., help="Query image (DICOM, PNG, JPEG, TIFF, NIfTI)."),
    k: int = typer.Option(5, "-k", "--k", min=1, help="How many cases."),
    specialty: str | None = typer.Option(None, "--specialty", help="Only cases of this specialty."),
    modality: str | None = typer.Option(None, "--modality", help="Only cases of this modality."),
    frame: int | None = typer.Option(None, "--frame", min=0, help="Frame or slice of a multi-frame image."),
    store: Path | None = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Find the k most similar cases to an image."""
    from evlf.core.imaging import load_image
    from evlf.retrieval import CaseStore, case_summary

    query = load_image(image, frame=frame)
    with CaseStore.open(_store_path(store)) as s:
        for w in s.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {w}")
        hits = s.search(query, k=k, specialty=specialty, modality=modality)
    rows = [case_summary(c, sim) for c, sim in hits]
    if as_json:
        print_json(rows)
        return
    table = Table("case", "similarity", "modality", "specialty", "labels", "body part")
    for r in rows:
        table.add_row(r["case_id"], f"{r['similarity']:.3f}", r["modality"] or "", r["specialty"] or "", ", ".join(r["labels"]), r["body_part"] or "")
    console.print(table)


@cases_app.command("info")
def info(store: Path | None = StoreOpt, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Describe the store: size, embedder, index type, counts by modality and specialty."""
    from evlf.retrieval import CaseStore

    with CaseStore.open(_store_path(store)) as s:
        data = s.info()
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@cases_app.command("starter")
def starter(store: Path | None = StoreOpt) -> None:
    """Build the starter bank from real images shipped by installed packages (no diagnoses: searchable, never shown to the model as examples)."""
    from evlf.retrieval import CaseStore
    from evlf.retrieval.starter import build_starter

    with CaseStore.open(_store_path(store), create=True) as s:
        added = build_starter(s)
        total = len(s)
    console.print(f"added {len(added)} starter cases; the store at {_store_path(store)} holds {total}")
    err_console.print(
        "[yellow]note:[/yellow] starter cases carry no diagnoses: `evlf cases search` finds them, but retrieval shows "
        "the model only labelled cases (add some with `evlf cases add DATA.jsonl`)"
    )


@cases_app.command("delete")
def delete(case_ids: list[str] = typer.Argument(..., help="Case ids to delete."), store: Path | None = StoreOpt) -> None:
    """Delete cases by id (an unknown id deletes nothing)."""
    from evlf.retrieval import CaseStore

    with CaseStore.open(_store_path(store)) as s:
        n = s.delete(case_ids)
    console.print(f"deleted {n} cases")


@cases_app.command("reindex")
def reindex(
    store: Path | None = StoreOpt,
    factory: str | None = typer.Option(None, "--index", help="faiss factory string (default: keep the current choice)."),
) -> None:
    """Rebuild the faiss index from the stored vectors (after a corrupt index file, or to change its type)."""
    from evlf.retrieval.store import CaseStore

    with CaseStore.open(_store_path(store), repair=True) as s:
        s.rebuild_index(factory)
        console.print(f"rebuilt {s.manifest.factory} over {len(s)} cases")


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")
