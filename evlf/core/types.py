"""Domain types shared by every layer; the Report is the versioned public contract.

Boxes always live in the original image's pixel grid (x right, y down, xyxy,
half-open extent in pixels) with the index of the image they belong to, so a
report can be drawn on the file the user gave without knowing any model's
resize.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Version of the Report JSON Schema. Bump the minor for additions, the major for breaks.
SCHEMA_VERSION = "1.1.0"

Task = Literal["diagnosis", "vqa", "grounding", "report"]
FindingStatus = Literal["verified", "adjusted", "unverified", "ungrounded"]


class Box(BaseModel):
    """An axis-aligned box in original-image pixels."""

    model_config = ConfigDict(frozen=True)

    x0: float
    y0: float
    x1: float
    y1: float
    image_index: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"box corners out of order: ({self.x0}, {self.y0}, {self.x1}, {self.y1})")
        return self

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]


class Mask(BaseModel):
    """A binary mask as uncompressed run-length encoding (COCO order: column-major, starting with zeros)."""

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    counts: list[int]
    image_index: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _covers_image(self) -> Mask:
        if sum(self.counts) != self.height * self.width:
            raise ValueError("mask run lengths do not add up to height x width")
        return self

    @classmethod
    def from_array(cls, mask: np.ndarray, image_index: int = 0) -> Mask:
        if mask.ndim != 2:
            raise ValueError("mask must be 2-D")
        flat = np.asarray(mask, dtype=bool).flatten(order="F")
        change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
        edges = np.concatenate([[0], change, [flat.size]])
        counts = np.diff(edges).tolist()
        if flat.size and flat[0]:
            counts = [0, *counts]
        return cls(height=mask.shape[0], width=mask.shape[1], counts=counts, image_index=image_index)

    def to_array(self) -> np.ndarray:
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        flat = np.repeat(values, self.counts)
        return flat.reshape((self.height, self.width), order="F")

    @property
    def area(self) -> int:
        return int(sum(self.counts[1::2]))


class ImageRef(BaseModel):
    """A file the user gave; `frame` picks one frame or slice of a multi-frame file."""

    path: Path
    frame: int | None = Field(None, ge=0)
    sha256: str | None = None


class ImageMeta(BaseModel):
    """What routing and the report need to know about an image, from its headers or pixels."""

    modality: str | None = None
    body_part: str | None = None
    laterality: str | None = None
    view: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    photometric: str | None = None
    bits_stored: int | None = None
    samples_per_pixel: int | None = None
    sop_class_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    study_description: str | None = None
    series_description: str | None = None
    manufacturer: str | None = None


class LoadedImage(BaseModel):
    """One decoded image: the original pixel grid (kept for refinement and boxes) and an 8-bit RGB rendering for the VLM."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    format: str
    width: int
    height: int
    frames: int = 1
    frame_index: int = 0
    sha256: str
    meta: ImageMeta = Field(default_factory=ImageMeta)
    pixels: np.ndarray = Field(exclude=True, repr=False)
    rgb: np.ndarray = Field(exclude=True, repr=False)

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] >= 3


class Study(BaseModel):
    """What a user asks about: one or more images, optional question and task, free metadata."""

    id: str = Field(min_length=1)
    images: list[ImageRef] = Field(min_length=1)
    task: Task = "diagnosis"
    question: str | None = None
    specialty: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _question_means_vqa(cls, data: Any) -> Any:
        """A question without a task asks for an answer (VQA), as `evlf diagnose --question` does."""
        if isinstance(data, dict) and data.get("question") and data.get("task") is None:
            return {**data, "task": "vqa"}
        return data

    @classmethod
    def from_paths(cls, paths: list[str | Path], **kwargs: Any) -> Study:
        refs = [ImageRef(path=Path(p)) for p in paths]
        if "id" not in kwargs:
            digest = hashlib.sha256("\n".join(str(Path(p).resolve()) for p in paths).encode()).hexdigest()
            kwargs["id"] = f"study-{digest[:12]}"
        return cls(images=refs, **kwargs)


class Finding(BaseModel):
    """One observation; its boxes are what the model drew, `refined_box` what the refiner found."""

    label: str
    code: str | None = None
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    boxes: list[Box] = Field(default_factory=list)
    mask: Mask | None = None
    refined_box: Box | None = None
    agreement: float | None = Field(None, ge=0.0, le=1.0)
    status: FindingStatus = "ungrounded"
    specialty: str | None = None
    note: str | None = None


class DifferentialItem(BaseModel):
    label: str
    code: str | None = None
    probability: float = Field(ge=0.0, le=1.0)


class Diagnosis(BaseModel):
    primary: str
    code: str | None = None
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    differential: list[DifferentialItem] = Field(default_factory=list)


class ReasoningStep(BaseModel):
    """A step of the model's reasoning; `cites` holds indices into Report.findings."""

    text: str
    cites: list[int] = Field(default_factory=list)


class Exemplar(BaseModel):
    """A retrieved solved case shown to the model as a worked example."""

    case_id: str
    similarity: float
    modality: str | None = None
    specialty: str | None = None
    labels: list[str] = Field(default_factory=list)
    source: str | None = None
    licence: str | None = None
    image_path: str | None = None
    answer: str | None = None


class Provenance(BaseModel):
    """Everything needed to audit or reproduce a report."""

    evlf_version: str
    model_id: str
    model_family: str | None = None
    weights_sha256: str | None = None
    trained: bool = True
    backend: str
    prompt_version: str | None = None
    plugin_versions: dict[str, str] = Field(default_factory=dict)
    graph: str | None = None
    graph_version: str | None = None
    seed: int | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    model_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    audit_id: str | None = None  # the audit record of this report, when the run was audited


class CheckIssue(BaseModel):
    """A problem a check found in a draft report; errors send the report back to reasoning."""

    check: str
    message: str
    severity: Literal["error", "warning"] = "warning"
    finding: int | None = None
    plugin: str | None = None


class ImageSummary(BaseModel):
    path: str
    sha256: str
    width: int
    height: int
    frames: int = 1
    frame_index: int = 0
    modality: str | None = None
    body_part: str | None = None


class Report(BaseModel):
    """The result of one study: typed, versioned, auditable."""

    schema_version: str = SCHEMA_VERSION
    study_id: str
    task: Task = "diagnosis"
    question: str | None = None
    answer: str | None = None
    specialties: list[str] = Field(default_factory=list)
    images: list[ImageSummary] = Field(default_factory=list)
    diagnosis: Diagnosis | None = None
    findings: list[Finding] = Field(default_factory=list)
    reasoning: list[ReasoningStep] = Field(default_factory=list)
    exemplars: list[Exemplar] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    provenance: Provenance

    @field_validator("reasoning")
    @classmethod
    def _cites_are_indices(cls, steps: list[ReasoningStep]) -> list[ReasoningStep]:
        for step in steps:
            if any(c < 0 for c in step.cites):
                raise ValueError("reasoning cites a negative finding index")
        return steps

    @model_validator(mode="after")
    def _cites_exist(self) -> Report:
        n = len(self.findings)
        for step in self.reasoning:
            bad = [c for c in step.cites if c >= n]
            if bad:
                raise ValueError(f"reasoning cites findings {bad} but the report has {n}")
        return self

    def export(self, name: str, path: str | Path | None = None, **options: Any) -> str | bytes:
        """Write this report with the exporter `name` (see `evlf exporters list`); options as in `ExportOptions`."""
        from evlf.core.exporter import ExportOptions, export_report

        return export_report(self, name, path, ExportOptions(**options))


def report_json_schema() -> dict[str, Any]:
    """The Report JSON Schema with its version, as `evlf schema report` prints it."""
    schema = Report.model_json_schema()
    schema["$id"] = f"https://evlf.dev/schema/report/{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["version"] = SCHEMA_VERSION
    return schema
