"""`evlf plugins list` and `evlf specialties list`: what is installed and what it contributes."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from evlf.cli.common import console, err_console, print_json

plugins_app = typer.Typer(help="Installed plugins and what they register.", no_args_is_help=True)
specialties_app = typer.Typer(help="Registered specialties: modalities and label sets.", no_args_is_help=True)


def plugins_payload() -> dict[str, Any]:
    from evlf.core.plugins import get_host

    host = get_host()
    return {
        "plugins": [
            {
                "name": info.name,
                "version": info.version,
                "builtin": info.builtin,
                "hooks": info.hooks,
                "registers": info.registers,
            }
            for info in host.plugin_infos()
        ],
        "load_failures": [{"name": name, "error": error} for name, error in sorted(host.load_failures.items())],
        "skipped": sorted(host.skipped),
    }


def specialties_payload() -> list[dict[str, Any]]:
    from evlf.core.plugins import get_host

    out = []
    for entry in get_host().registries.specialties.entries():
        spec = entry.obj
        info = spec.info() if hasattr(spec, "info") else {"name": entry.name}
        info.setdefault("modalities", list(getattr(spec, "modalities", ())))
        info.setdefault("labels", [])
        out.append({"name": entry.name, "plugin": entry.plugin, **{k: v for k, v in info.items() if k != "name"}})
    return out


@plugins_app.command("list")
def list_plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List plugins: name, version, hooks implemented, what each registers; load failures too."""
    data = plugins_payload()
    if as_json:
        print_json(data)
        return
    table = Table("plugin", "version", "hooks", "registers", title="evlf plugins")
    for p in data["plugins"]:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in p["registers"].items())
        name = p["name"] + ("" if p["builtin"] else " (external)")
        table.add_row(name, str(p["version"]), ", ".join(p["hooks"]), registers or "-")
    console.print(table)
    for failure in data["load_failures"]:
        err_console.print(f"[yellow]failed to load[/yellow] {failure['name']}: {failure['error']}", highlight=False)
    if data["skipped"]:
        err_console.print(f"skipped by EVLF_LOAD_PLUGINS/EVLF_BLOCK_PLUGINS: {', '.join(data['skipped'])}", highlight=False)


@specialties_app.command("list")
def list_specialties(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List specialties with their plugin, modalities and labels (with codes)."""
    data = specialties_payload()
    if as_json:
        print_json(data)
        return
    from evlf.core.evidence import MODALITY_NAMES

    table = Table("specialty", "plugin", "modalities", "labels", title="evlf specialties")
    for s in data:
        labels = ", ".join(
            lab["name"] + (f" [{lab['code']}]" if lab.get("code") else "") if isinstance(lab, dict) else str(lab)
            for lab in s["labels"]
        )
        modalities = ", ".join(f"{m} ({MODALITY_NAMES[m]})" if m in MODALITY_NAMES else m for m in s["modalities"])
        table.add_row(s["name"], s["plugin"], modalities, labels)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(specialties_app, name="specialties")
