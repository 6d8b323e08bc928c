"""`evlf audit list | show | verify` and `evlf replay`: read, check and re-run the audit trail."""

from __future__ import annotations

from pathlib import Path

import typer

from evlf.cli.common import console, err_console, print_json

audit_app = typer.Typer(help="Read and check the audit trail (an append-only, hash-chained record of runs).", no_args_is_help=True)
AuditOpt = typer.Option(None, "--audit", help="The audit trail (default: $EVLF_AUDIT, else the user data folder's audit.jsonl).")


def open_log(path: Path | None):  # -> AuditLog
    from evlf.core.audit.log import AuditLog, default_audit_path

    return AuditLog(path or default_audit_path())


@audit_app.command("list")
def list_records(audit: Path | None = AuditOpt, as_json: bool = typer.Option(False, "--json", help="Print JSON objects.")) -> None:
    """One line per record: id, time, entry point, graph, backend, model, report hash."""
    log = open_log(audit)
    rows = [
        {
            "id": r.id,
            "seq": r.seq,
            "created_at": r.created_at.isoformat(),
            "entry_point": r.entry_point,
            "graph": r.config.graph,
            "backend": r.config.backend,
            "model": r.config.model.get("name"),
            "images": len(r.inputs),
            "model_calls": len(r.calls),
            "report_sha256": r.report_sha256,
            "replay_of": r.replay_of,
        }
        for r in log.records()
    ]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=str(log.path))
    for col in ("id", "created", "entry", "graph", "backend", "model", "images", "calls", "report"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["created_at"][:19], r["entry_point"], r["graph"], r["backend"], str(r["model"]),
                      str(r["images"]), str(r["model_calls"]), r["report_sha256"][:12])
    console.print(table)


@audit_app.command("show")
def show(record_id: str = typer.Argument(..., help="A record id (a unique prefix is enough)."), audit: Path | None = AuditOpt) -> None:
    """The whole record as JSON."""
    print_json(open_log(audit).get(record_id).model_dump(mode="json"))


@audit_app.command("verify")
def verify(audit: Path | None = AuditOpt) -> None:
    """Check the chain: exit 0 when intact, 1 with every break listed when not."""
    log = open_log(audit)
    problems = log.verify()
    if problems:
        for p in problems:
            err_console.print(f"[red]broken:[/red] {log.path}" + (f" line {p.line}" if p.line else "") + f": {p.message}", highlight=False)
        raise typer.Exit(1)
    n = sum(1 for _ in log.records())
    console.print(f"intact: {n} record{'s' if n != 1 else ''} in {log.path}", highlight=False)


def replay_command(
    record_id: str = typer.Argument(..., help="The record to replay (a unique id prefix is enough)."),
    audit: Path | None = AuditOpt,
    from_record: bool = typer.Option(False, "--from-record", help="Answer every model call from the record (no model): isolates evlf's own code."),
    image: list[Path] = typer.Option([], "--image", help="An original input file (found by hash; repeat)."),
    images: list[Path] = typer.Option([], "--images", help="A folder to search for the input files by hash."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-run a recorded study with its recorded configuration; exit 0 when the report is identical, 1 where it differs."""
    from evlf.agents.replay import replay

    record = open_log(audit).get(record_id)
    result = replay(record, [*image, *images], from_record=from_record)
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"report"}))
    elif result.identical:
        console.print(f"identical: record {record.id} replayed ({result.mode}) to report sha256 {result.replayed_sha256[:16]}", highlight=False)
    else:
        console.print(f"[red]differs:[/red] record {record.id} ({result.mode}): report sha256 {result.recorded_sha256[:16]} recorded, {result.replayed_sha256[:16]} now", highlight=False)
        for line in result.differences:
            console.print(f"  - {line}", highlight=False, markup=False)
    if not result.identical:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command("replay")(replay_command)
