"""What an exporter plugin registers: a named renderer of a Report to a file format.

Simple formats render from the Report alone (`render(report, loaded_images)`).
Formats that reference the source files (DICOM SR/SEG, FHIR) register `export`
instead, which receives an `ExportOptions` naming those files and what the user
allows; `Exporter.write` calls whichever the exporter has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evlf.core.errors import InputError
from evlf.core.types import Report


class ExportOptions(BaseModel):
    """What an exporter may need beyond the Report: the source files and the user's permissions.

    `sources` follow `report.images` order (default: the paths the report
    names); `images` are the decoded images where the caller already has them.
    Patient identity leaves the source files only with `allow_patient_identity`;
    otherwise `subject` (e.g. "Patient/123") is the reference the caller supplies.
    `settings` holds exporter-specific choices (e.g. {"fhir_version": "R5"}).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")  # a misspelt option is an error, not ignored

    sources: list[Path] | None = None
    images: list[Any] = Field(default_factory=list)
    allow_patient_identity: bool = False
    deidentify: bool = False  # DICOM output: PS3.15 basic profile (Retain UIDs option) on what is written
    subject: str | None = None
    settings: dict[str, str] = Field(default_factory=dict)

    def source_paths(self, report: Report) -> list[Path]:
        """The source file of each report image, checked to exist."""
        paths = self.sources if self.sources is not None else [Path(i.path) for i in report.images]
        if len(paths) != len(report.images):
            raise InputError("sources", f"{len(paths)} source files given for a report of {len(report.images)} images")
        return paths


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str
    media_type: str
    render: Callable[[Report, list[Any]], str | bytes] | None = None  # render(report, loaded_images)
    export: Callable[[Report, ExportOptions], str | bytes] | None = None  # export(report, options)
    description: str = ""
    needs_images: bool = False  # render wants the decoded images (e.g. an HTML page draws on them)

    def __post_init__(self) -> None:
        if (self.render is None) == (self.export is None):
            raise ValueError(f"exporter {self.name!r} must give exactly one of render or export")

    def write(self, report: Report, options: ExportOptions | None = None) -> str | bytes:
        """The exported file's content (text or bytes)."""
        opts = options or ExportOptions()
        if self.export is not None:
            return self.export(report, opts)
        assert self.render is not None
        return self.render(report, opts.images)


def export_report(report: Report, name: str, path: str | Path | None = None, options: ExportOptions | None = None) -> str | bytes:
    """Export `report` with the registered exporter `name`; write it to `path` when given."""
    from evlf.core.plugins import get_host

    exporter = get_host().registries.exporters.get(name)
    opts = options or ExportOptions()
    if exporter.needs_images and not opts.images:
        from evlf.core.imaging import load_image

        frames = [i.frame_index if i.frames > 1 else None for i in report.images]
        opts = opts.model_copy(update={"images": [load_image(p, f) for p, f in zip(opts.source_paths(report), frames)]})
    content = exporter.write(report, opts)
    if path is not None:
        target = Path(path)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return content
