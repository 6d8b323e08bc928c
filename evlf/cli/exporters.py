"""`evlf exporters list`, and the `--export NAME=PATH` targets `evlf diagnose` writes after a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from evlf.cli.common import console, print_json
from evlf.core.errors import InputError

exporters_app = typer.Typer(help="Registered report exporters (formats for --export NAME=PATH and the server's format).", no_args_is_help=True)


@exporters_app.command("list")
def list_exporters(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The registered exporters: name, file suffix, media type, plugin."""
    from evlf.core.plugins import get_host

    rows = [
        {"name": e.name, "suffix": e.obj.suffix, "media_type": e.obj.media_type, "plugin": e.plugin, "description": getattr(e.obj, "description", "")}
        for e in get_host().registries.exporters.entries()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("exporter", "suffix", "media type", "plugin", "description")
    for r in rows:
        table.add_row(r["name"], r["suffix"], r["media_type"], r["plugin"], r["description"])
    console.print(table)


def parse_targets(specs: list[str], shortcuts: dict[str, Path | None]) -> list[tuple[str, Path]]:
    """`NAME=PATH` specs plus the shortcut options (--out, --md, --html), each checked against the registry before any run."""
    from evlf.core.plugins import get_host

    targets = [(name, path) for name, path in shortcuts.items() if path is not None]
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError("--export", f"expected NAME=PATH (e.g. fhir=bundle.json), not {spec!r}")
        targets.append((name.strip(), Path(path.strip())))
    registry = get_host().registries.exporters
    for name, _ in targets:
        registry.get(name)  # ConfigError naming the known exporters
    return targets


def parse_settings(specs: list[str]) -> dict[str, str]:
    settings = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise InputError("--export-setting", f"expected KEY=VALUE (e.g. fhir_version=R5), not {spec!r}")
        settings[key.strip()] = value.strip()
    return settings


def write_targets(report: Any, targets: list[tuple[str, Path]], options: Any) -> None:
    """Write every target; with both DICOM objects, the SEG first and the SR's ROIs referencing its segments."""
    from evlf.core.exporter import export_report

    seg = next((path for name, path in targets if name == "dicom-seg"), None)
    for name, path in sorted(targets, key=lambda t: t[0] != "dicom-seg"):
        opts = options
        if name == "dicom-sr" and seg is not None and "segmentation" not in options.settings:
            opts = options.model_copy(update={"settings": {**options.settings, "segmentation": str(seg)}})
        export_report(report, name, path, opts)


def register(app: typer.Typer) -> None:
    app.add_typer(exporters_app, name="exporters")
