"""The batch's record: DIR/results.jsonl, one line per finished study, and atomic file writes.

A line is appended, flushed and fsynced as soon as its study ends, so a kill
loses at most the line being written; a torn last line is ignored on reading
and a newline is put before the next one. Report files are written to a
temporary file in the same folder and moved into place with os.replace, so a
report on disk is whole or absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

RESULTS_NAME = "results.jsonl"


class ResultRow(BaseModel):
    """What happened to one study."""

    id: str
    key: str | None = None  # resume key; None when the images could not be read
    status: Literal["ok", "failed"]
    diagnosis: str | None = None
    findings: int = 0
    warnings: list[str] = Field(default_factory=list)
    model: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    reports: dict[str, str] = Field(default_factory=dict)  # exporter name -> file, relative to DIR


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsLog:
    """Appends rows to DIR/results.jsonl and reads back the studies already done."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / RESULTS_NAME

    def rows(self) -> list[ResultRow]:
        """Every whole row in the file, in order (torn or foreign lines are skipped)."""
        if not self.path.exists():
            return []
        rows = []
        for text in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(ResultRow.model_validate_json(text))
            except ValidationError:
                continue
        return rows

    def done_keys(self, out_dir: Path) -> set[str]:
        """Keys of studies that succeeded and whose report files are all still on disk."""
        return {
            r.key
            for r in self.rows()
            if r.status == "ok" and r.key and all((out_dir / f).is_file() for f in r.reports.values())
        }

    def append(self, row: ResultRow) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a torn line from a killed run: end it before ours
                    fh.write(b"\n")
            fh.write((json.dumps(row.model_dump(mode="json")) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
