"""The dataset JSONL format (docs/dataset-format.md) shared by eval, cases, scoring and training, and a folder-of-images loader.

Every line is validated with pydantic; a bad file raises one InputError that
lists the first offending lines with their numbers, so a user fixes them all
at once instead of one per run.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evlf.core.errors import InputError

#: How many offending lines an error message lists.
MAX_LISTED_ERRORS = 5

CaseTask = Literal["cls", "vqa", "grounding"]
BoxList = list[list[float]]


def check_boxes(boxes: BoxList | None) -> BoxList | None:
    """Boxes are [x0, y0, x1, y1] in pixels with x1 >= x0 and y1 >= y0."""
    if boxes is None:
        return None
    for i, box in enumerate(boxes):
        if len(box) != 4:
            raise ValueError(f"box {i} has {len(box)} numbers, expected [x0, y0, x1, y1]")
        if not all(math.isfinite(v) for v in box):
            raise ValueError(f"box {i} {box} has a coordinate that is not a finite number")
        x0, y0, x1, y1 = box
        if x1 < x0 or y1 < y0:
            raise ValueError(f"box {i} {box} has x1 < x0 or y1 < y0")
    return boxes


class Case(BaseModel):
    """One evaluation case, as a line of the dataset JSONL."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    images: list[Path] = Field(min_length=1)
    task: CaseTask = "cls"
    question: str | None = None
    label: str | None = None
    labels: list[str] = Field(default_factory=list)
    answer: str | None = None
    answer_type: Literal["closed", "open"] | None = None
    boxes: BoxList | None = None
    box_labels: list[str] | None = None
    masks: list[Path] | None = None
    modality: str | None = None
    specialty: str | None = None
    body_part: str | None = None
    view: str | None = None
    report: str | None = None
    source: str | None = None
    licence: str | None = None

    _boxes_ok = field_validator("boxes")(check_boxes)

    @model_validator(mode="after")
    def _consistent(self) -> Case:
        if self.box_labels is not None and len(self.box_labels) != len(self.boxes or []):
            raise ValueError("box_labels must have one label per box")
        if self.label is not None and self.labels and self.label not in self.labels:
            self.labels = [self.label, *self.labels]
        if self.task == "grounding" and self.boxes is None:
            raise ValueError("a grounding case needs 'boxes' (an empty list for no lesion)")
        if self.task == "vqa" and self.answer is None:
            raise ValueError("a vqa case needs 'answer'")
        return self

    def resolved(self, root: Path) -> Case:
        """A copy whose relative image and mask paths are taken from `root` (the JSONL's folder)."""
        images = [p if p.is_absolute() else root / p for p in self.images]
        masks = None if self.masks is None else [p if p.is_absolute() else root / p for p in self.masks]
        return self.model_copy(update={"images": images, "masks": masks})


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line summary of a pydantic error: 'field: message; field: message'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def format_line_errors(errors: list[tuple[int, str]], total: int | None = None) -> str:
    """'line 3: ...; line 7: ...' listing the first MAX_LISTED_ERRORS, plus how many more."""
    shown = "; ".join(f"line {n}: {msg}" for n, msg in errors[:MAX_LISTED_ERRORS])
    more = (total if total is not None else len(errors)) - min(len(errors), MAX_LISTED_ERRORS)
    return shown + (f" (and {more} more bad lines)" if more > 0 else "")


def iter_json_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line."""
    if not path.is_file():
        raise InputError(path, "no such file")
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if text.strip():
                yield number, text


def read_jsonl_models(
    path: Path,
    model: type[M],
    *,
    check: Callable[[M], None] | None = None,
) -> list[tuple[int, M]]:
    """Parse and validate every line; raise one InputError listing the first bad lines (numbers from 1)."""
    path = Path(path)
    good: list[tuple[int, M]] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, text in iter_json_lines(path):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append((number, f"not JSON ({exc.msg})"))
            continue
        if not isinstance(raw, dict):
            errors.append((number, "not a JSON object"))
            continue
        try:
            item = model.model_validate(raw)
            if check is not None:
                check(item)
        except ValidationError as exc:
            errors.append((number, describe_validation_error(exc)))
            continue
        except ValueError as exc:
            errors.append((number, str(exc)))
            continue
        ident = getattr(item, "id", None)
        if isinstance(ident, str):
            if ident in seen:
                errors.append((number, f"duplicate id {ident!r} (first on line {seen[ident]})"))
                continue
            seen[ident] = number
        good.append((number, item))
    if errors:
        raise InputError(path, format_line_errors(errors))
    if not good:
        raise InputError(path, "no cases (the file is empty)")
    return good


def load_jsonl(path: str | Path) -> list[Case]:
    """Cases from a dataset JSONL; relative image paths are resolved against the file's folder."""
    path = Path(path)
    root = path.resolve().parent
    return [case.resolved(root) for _, case in read_jsonl_models(path, Case)]


def load_image_folder(
    folder: str | Path,
    labels_csv: str | Path,
    *,
    modality: str | None = None,
    specialty: str | None = None,
) -> list[Case]:
    """Classification cases from a folder of images and a CSV of labels.

    The CSV needs a header with an image column (`image`, `file`, `filename` or
    `path`) and a `label` column; optional `id`, `modality`, `specialty`
    columns override the defaults given here. Image paths are relative to
    `folder`.
    """
    folder, labels_csv = Path(folder), Path(labels_csv)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    if not labels_csv.is_file():
        raise InputError(labels_csv, "no such file")
    with labels_csv.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        image_col = next((c for c in ("image", "file", "filename", "path") if c in header), None)
        if image_col is None or "label" not in header:
            raise InputError(labels_csv, f"the header needs an image column (image/file/filename/path) and 'label'; got {header}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    cases: list[Case] = []
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        name = row.get(image_col, "")
        image = folder / name
        ident = row.get("id") or Path(name).stem
        if not name or not image.is_file():
            errors.append((number, f"image {name!r} not found in {folder}"))
            continue
        if not row.get("label"):
            errors.append((number, "empty label"))
            continue
        if ident in seen:
            errors.append((number, f"duplicate id {ident!r}"))
            continue
        seen.add(ident)
        cases.append(
            Case(
                id=ident,
                images=[image],
                task="cls",
                label=row["label"],
                modality=row.get("modality") or modality,
                specialty=row.get("specialty") or specialty,
            )
        )
    if errors:
        raise InputError(labels_csv, format_line_errors(errors))
    if not cases:
        raise InputError(labels_csv, "no rows")
    return cases


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | BaseModel]) -> None:
    """Write rows as JSON lines (pydantic models dumped in JSON mode, None fields dropped)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            data = row.model_dump(mode="json", exclude_none=True) if isinstance(row, BaseModel) else row
            fh.write(json.dumps(data) + "\n")
