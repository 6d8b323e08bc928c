"""The Specialty base: what a specialty plugin contributes to routing, prompting and checking."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from evlf.core.answer import EvlfAnswer
from evlf.core.untrusted import sanitize_untrusted_text
from evlf.core.prompts import Label, Prompt, build_prompt
from evlf.core.types import CheckIssue, Exemplar, LoadedImage, Report, Study, Task

__all__ = ["Label", "Prompt", "Specialty", "SpecialtyOptions"]


class SpecialtyOptions(BaseModel):
    """Per-specialty settings; subclasses add fields. Agreement thresholds live here so each specialty can tune them."""

    verify_iou: float = 0.7
    adjust_iou: float = 0.3
    #: How the model must write boxes (set by the agents layer from the backend's BoxConvention).
    box_format: str | None = None
    max_exemplars: int = 4


class Specialty:
    """Subclass, set the class attributes, and register an instance in `register_specialties`.

    Only `name` and `score` are required: the default `build_prompt` assembles
    the shared EVLF blocks (evlf.core.prompts) from `role`, `guidance` and
    `labels`, and the default `checks` keeps boxes inside their images.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    modalities: ClassVar[tuple[str, ...]] = ()
    labels: ClassVar[tuple[Label, ...]] = ()
    Options: ClassVar[type[SpecialtyOptions]] = SpecialtyOptions
    #: Who the model should be, e.g. "You are a consultant dermatologist reading dermoscopy images."
    role: ClassVar[str] = ""
    #: Specialty-specific reading advice appended to the system prompt.
    guidance: ClassVar[str] = ""

    def score(self, study: Study, images: list[LoadedImage]) -> float:
        """0 declines the study; higher means a better fit (at most 1)."""
        raise NotImplementedError

    def options(self, **overrides: object) -> SpecialtyOptions:
        return self.Options(**overrides)

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
        role = self.role or f"You are an expert in {self.title or self.name} reading medical images."
        return build_prompt(
            role=role,
            task=task,
            labels=self.labels,
            exemplars=exemplars[: options.max_exemplars],
            question=study.question,
            guidance=self.guidance,
            image_notes=[self.describe_image(img) for img in images],
            box_format=options.box_format,
        )

    def describe_image(self, image: LoadedImage) -> str:
        """One line about an image for the prompt (size, modality, view, laterality)."""
        meta = image.meta
        bits = [f"{image.width}x{image.height} pixels"]
        for key, value in (
            ("modality", meta.modality),
            ("body part", meta.body_part),
            ("view", meta.view),
            ("laterality", meta.laterality),
        ):
            if value:
                bits.append(f"{key} {sanitize_untrusted_text(value, 64)}")  # header text: data, one bounded line
        return ", ".join(bits)

    def postprocess(self, answer: EvlfAnswer, images: list[LoadedImage], options: SpecialtyOptions) -> EvlfAnswer:
        """Map label spellings onto the label set (case-insensitive), so codes can be attached later."""
        if not self.labels:
            return answer

        def canon(name: str) -> str:
            lab = self.label(name)
            return lab.name if lab else name

        findings = [f.model_copy(update={"label": canon(f.label)}) for f in answer.findings]
        differential = [d.model_copy(update={"label": canon(d.label)}) for d in answer.differential]
        return answer.model_copy(
            update={"diagnosis": canon(answer.diagnosis), "findings": findings, "differential": differential}
        )

    def checks(self, report: Report, images: list[LoadedImage]) -> list[CheckIssue]:
        from evlf.core.checks import boxes_inside_images

        return self.tag(boxes_inside_images(report, images, self.name))

    def tag(self, issues: list[CheckIssue]) -> list[CheckIssue]:
        """Mark issues as this specialty's, for the report."""
        return [i if i.plugin else i.model_copy(update={"plugin": self.name}) for i in issues]

    def label_names(self) -> list[str]:
        return [lab.name for lab in self.labels]

    def info(self) -> dict[str, object]:
        """What `evlf specialties list --json` shows."""
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "modalities": list(self.modalities),
            "labels": [lab.model_dump(exclude_none=True) for lab in self.labels],
        }

    def label(self, name: str) -> Label | None:
        key = name.strip().lower()
        return next((lab for lab in self.labels if lab.name.lower() == key), None)
