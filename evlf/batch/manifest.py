"""What a batch runs: a JSONL manifest (one study a line) or a folder of images, read into BatchItems.

A manifest line names an id, its image paths (relative to the manifest's
folder) and optionally a question, a task, a specialty and hints (modality and
free metadata). The dataset JSONL of `evlf eval` reads as a manifest too: its
answers and labels are ignored, its `cls` task means diagnosis. Image files are
not opened here: a missing or corrupt file fails only its own study, later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evlf.core.dataset import read_jsonl_models
from evlf.core.errors import InputError
from evlf.core.types import ImageRef, Study

#: Dataset tasks spelled the dataset's way, mapped to the Study task.
DATASET_TASKS = {"cls": "diagnosis"}
#: Files a folder manifest takes as images (no suffix: DICOM files often have none).
IMAGE_SUFFIXES = {"", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nii", ".gz"}


class BatchItem(BaseModel):
    """One study of a batch, as written in the manifest."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    images: list[Path] = Field(min_length=1)
    task: Literal["diagnosis", "vqa", "grounding", "report"] = "diagnosis"
    question: str | None = None
    specialty: str | None = None
    modality: str | None = None
    hints: dict[str, Any] = Field(default_factory=dict)

    @field_validator("task", mode="before")
    @classmethod
    def _dataset_task(cls, value: Any) -> Any:
        return DATASET_TASKS.get(value, value) if isinstance(value, str) else value

    def resolved(self, root: Path) -> BatchItem:
        """A copy whose relative image paths are taken from `root` (the manifest's folder)."""
        return self.model_copy(update={"images": [p if p.is_absolute() else root / p for p in self.images]})

    def study(self) -> Study:
        """The Study the pipeline runs; hints and the modality travel in its metadata."""
        metadata = dict(self.hints)
        if self.modality:
            metadata["modality"] = self.modality
        task = "vqa" if self.question and self.task == "diagnosis" and "task" not in self.model_fields_set else self.task
        return Study(
            id=self.id,
            images=[ImageRef(path=p) for p in self.images],
            task=task,
            question=self.question,
            specialty=self.specialty,
            metadata=metadata,
        )


def read_manifest(path: str | Path) -> list[BatchItem]:
    """The studies of a JSONL manifest or a folder of images, in manifest order."""
    p = Path(path)
    if p.is_dir():
        return _folder_items(p)
    root = p.resolve().parent
    return [item.resolved(root) for _, item in read_jsonl_models(p, BatchItem)]


def _folder_items(folder: Path) -> list[BatchItem]:
    """One study per image file under `folder` (recursively, hidden files skipped); its id is the relative path."""
    files = sorted(
        f
        for f in folder.rglob("*")
        if f.is_file()
        and not any(part.startswith(".") for part in f.relative_to(folder).parts)
        and f.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise InputError(folder, "no image files in the folder")
    return [BatchItem(id=f.relative_to(folder).as_posix(), images=[f.resolve()]) for f in files]
