"""`evlf info PATH...`: what evlf sees in each image file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from evlf.cli.common import EXIT_BAD_INPUT, console, fail_input, print_json
from evlf.core.errors import InputError
from evlf.core.types import LoadedImage


def describe(image: LoadedImage) -> dict[str, Any]:
    meta = image.meta
    return {
        "path": str(image.path),
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "frames": image.frames,
        "frame_index": image.frame_index,
        "modality": meta.modality,
        "body_part": meta.body_part,
        "laterality": meta.laterality,
        "view": meta.view,
        "photometric": meta.photometric,
        "bits_stored": meta.bits_stored,
        "pixel_spacing": list(meta.pixel_spacing) if meta.pixel_spacing else None,
        "dtype": str(image.pixels.dtype),
        "rendering": [image.rgb.shape[1], image.rgb.shape[0]],
        "sha256": image.sha256,
    }


def info(
    paths: list[Path] = typer.Argument(..., help="Image files: PNG, JPEG, TIFF, BMP, DICOM, NIfTI."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per file."),
    frame: int | None = typer.Option(None, "--frame", min=0, help="Frame or slice to load (default: the middle)."),
) -> None:
    """Print what was loaded from each image (format, size, frames, modality, body part, spacing...)."""
    from evlf.core.imaging import load_image

    rows: list[dict[str, Any]] = []
    failed = False
    for path in paths:
        try:
            rows.append(describe(load_image(path, frame)))
        except InputError as exc:
            failed = True
            fail_input(escape(str(exc)))  # a file name like "scan[/b].png" is text, not console markup
    if as_json:
        print_json(rows)
    else:
        table = Table("file", "format", "size", "frames", "modality", "body part", "spacing (mm)", "photometric", "bits")
        for r in rows:
            spacing = "x".join(f"{v:.3g}" for v in r["pixel_spacing"]) if r["pixel_spacing"] else "-"
            table.add_row(
                escape(Path(r["path"]).name),
                r["format"],
                f"{r['width']}x{r['height']}",
                f"{r['frame_index'] + 1}/{r['frames']}",
                r["modality"] or "-",
                r["body_part"] or "-",
                spacing,
                r["photometric"] or "-",
                str(r["bits_stored"] or "-"),
            )
        if rows:
            console.print(table)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
