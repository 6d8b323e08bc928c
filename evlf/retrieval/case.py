"""One solved case as the store keeps it, and the dataset-JSONL reader that makes cases."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evlf.core.errors import InputError


class Case(BaseModel):
    """A retrievable case: image reference and hash, where it sits in medicine, what is known about it, where it comes from."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1)
    image_path: str
    frame: int | None = Field(None, ge=0)
    image_sha256: str | None = None
    specialty: str | None = None
    modality: str | None = None
    body_part: str | None = None
    view: str | None = None
    labels: list[str] = Field(default_factory=list)
    boxes: list[list[float]] = Field(default_factory=list)
    box_labels: list[str] = Field(default_factory=list)
    answer: str | None = None
    report: str | None = None
    question: str | None = None
    source: str | None = None
    licence: str | None = None
    note: str | None = None

    @field_validator("boxes")
    @classmethod
    def _boxes_ordered(cls, boxes: list[list[float]]) -> list[list[float]]:
        for b in boxes:
            if len(b) != 4 or b[2] < b[0] or b[3] < b[1]:
                raise ValueError(f"box {b} is not [x0, y0, x1, y1] with x1 >= x0, y1 >= y0")
        return boxes


def read_dataset(path: str | Path) -> list[Case]:
    """Read a dataset JSONL file into cases (one per line, its first image); paths resolve against the file's folder."""
    from evlf.core.dataset import load_jsonl

    cases: list[Case] = []
    for line in load_jsonl(path):
        labels = list(line.labels)
        if line.label and line.label not in labels:
            labels.insert(0, line.label)
        try:
            cases.append(
                Case(
                    case_id=line.id,
                    image_path=str(line.images[0].resolve()),
                    specialty=line.specialty,
                    modality=line.modality,
                    body_part=line.body_part,
                    view=line.view,
                    labels=labels,
                    boxes=line.boxes or [],
                    box_labels=line.box_labels or [],
                    answer=line.answer,
                    report=line.report,
                    question=line.question,
                    source=line.source,
                    licence=line.licence,
                )
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(f"{path}", f"case {line.id!r}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return cases
