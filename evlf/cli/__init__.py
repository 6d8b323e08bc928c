"""The `evlf` command line (typer + rich).

Each command group lives in its own module with a `register(app)` function.
Bad input exits 2 with one line naming the file and the problem; an internal
fault exits 1; tracebacks only with --debug.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from evlf.cli.common import app, run_app

COMMAND_MODULES = (
    "evlf.cli.info",
    "evlf.cli.schema",
    "evlf.cli.plugins",
    "evlf.cli.cases",
    "evlf.cli.diagnose",
    "evlf.cli.exporters",
    "evlf.cli.evaluate",
    "evlf.cli.batch",
    "evlf.cli.train",
    "evlf.cli.serve",
    "evlf.cli.audit",
)

for _module in COMMAND_MODULES:
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app(app, argv))


__all__ = ["app", "main", "typer"]
