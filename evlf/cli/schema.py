"""`evlf schema report`: the versioned Report JSON Schema."""

from __future__ import annotations

import typer

from evlf.cli.common import print_json
from evlf.core.types import report_json_schema

schema_app = typer.Typer(help="Print JSON Schemas of evlf's public types.", no_args_is_help=True)


@schema_app.command("report")
def report() -> None:
    """Print the Report JSON Schema (it carries its version)."""
    print_json(report_json_schema())


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
