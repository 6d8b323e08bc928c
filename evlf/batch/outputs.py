"""Report files: each study's report rendered by the exporters the user names, written atomically.

`--export NAME` writes DIR/reports/{id}{suffix} with the exporter NAME from the
plugin host's registry (json, markdown, html, or a plugin's); `NAME=PATTERN`
chooses the file, relative to DIR, with `{id}` (the study id made safe for a
file name) and `{key}` (its resume key) filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evlf.batch.results import write_atomic
from evlf.core.errors import InputError
from evlf.core.exporter import Exporter
from evlf.core.types import Report

DEFAULT_EXPORTS = ("json",)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportSpec:
    exporter: Exporter
    pattern: str

    def target(self, out_dir: Path, study_id: str, key: str) -> Path:
        return out_dir / self.pattern.format(id=safe_name(study_id, key), key=key)


def safe_name(study_id: str, key: str) -> str:
    """The id as a file name; an id that had to change gets part of its key, so two ids never collide."""
    name = _UNSAFE.sub("_", study_id).strip("._") or "study"
    return name if name == study_id else f"{name}-{key[:8]}"


def parse_exports(specs: list[str] | None) -> list[ExportSpec]:
    """`json`, `html=pages/{id}.html`, ... to ExportSpecs; an unknown exporter or a bad pattern is an InputError."""
    from evlf.core.plugins import get_host

    registry = get_host().registries.exporters
    out = []
    for spec in specs or list(DEFAULT_EXPORTS):
        name, _, pattern = spec.partition("=")
        name = name.strip()
        if name not in registry:
            raise InputError("--export", f"unknown exporter {name!r} (registered: {', '.join(sorted(registry.names()))})")
        exporter = registry.get(name)
        pattern = pattern.strip() or f"reports/{{id}}{exporter.suffix}"
        try:
            pattern.format(id="x", key="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError("--export", f"bad file pattern {pattern!r} (use {{id}} and {{key}}): {exc}") from None
        if "{id}" not in pattern and "{key}" not in pattern:
            raise InputError("--export", f"file pattern {pattern!r} needs {{id}} or {{key}}, or every study writes the same file")
        out.append(ExportSpec(exporter, pattern))
    return out


def write_reports(report: Report, key: str, out_dir: Path, exports: list[ExportSpec]) -> dict[str, str]:
    """Render and write every export of one report; returns exporter name -> path relative to out_dir."""
    written = {}
    images: list[Any] | None = None
    for spec in exports:
        if spec.exporter.name == "html" and images is None:
            images = _load_images(report)
        data = spec.exporter.render(report, images or [])
        path = spec.target(out_dir, report.study_id, key)
        write_atomic(path, data)
        written[spec.exporter.name] = path.relative_to(out_dir).as_posix()
    return written


def _load_images(report: Report) -> list[Any]:
    """The study's images, for exporters that show them (HTML)."""
    from evlf.core.imaging import load_image

    return [load_image(s.path, s.frame_index if s.frames > 1 else None) for s in report.images]
