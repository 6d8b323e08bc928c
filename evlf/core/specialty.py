"""The Specialty base: what a specialty plugin contributes to routing, prompting and checking."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from evlf.core.answer import EvlfAnswer
from evlf.core.types import CheckIssue, Exemplar, LoadedImage, Report, Study, Task


class Label(BaseModel):
    """A diagnosis or finding a specialty knows, with a code where a standard one exists."""

    model_config = ConfigDict(frozen=True)

    name: str
    code: str | None = None
    system: str | None = None  # "SNOMED CT", "ICD-10", ...
    description: str | None = None


class SpecialtyOptions(BaseModel):
    """Per-specialty settings; subclasses add fields. Agreement thresholds live here so each specialty can tune them."""

    verify_iou: float = 0.7
    adjust_iou: float = 0.3


class Prompt(BaseModel):
    system: str
    user: str
    version: str


class Specialty:
    """Subclass, set the class attributes, and register an instance in `register_specialties`."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    modalities: ClassVar[tuple[str, ...]] = ()
    labels: ClassVar[tuple[Label, ...]] = ()
    Options: ClassVar[type[SpecialtyOptions]] = SpecialtyOptions

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        """0 declines the study; higher means a better fit (at most 1)."""
        raise NotImplementedError

    def preprocess(self, images: list[LoadedImage], options: SpecialtyOptions) -> list[LoadedImage]:
        return images

    def build_prompt(
        self,
        study: Study,
        images: list[LoadedImage],
        exemplars: list[Exemplar],
        task: Task,
        options: SpecialtyOptions,
    ) -> Prompt:
        raise NotImplementedError

    def postprocess(self, answer: EvlfAnswer, images: list[LoadedImage], options: SpecialtyOptions) -> EvlfAnswer:
        return answer

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        return []

    def label(self, name: str) -> Label | None:
        key = name.strip().lower()
        return next((lab for lab in self.labels if lab.name.lower() == key), None)
